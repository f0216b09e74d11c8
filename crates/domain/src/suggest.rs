//! "Did you mean": the closest known names to an unknown one.

/// Edit distance between two strings, by characters (Chinese names count one per character).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Up to three known names closest to `wanted`; names containing it, or contained in it, first.
pub fn closest<'a>(wanted: &str, known: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = known
        .map(|k| {
            let d = distance(wanted, k);
            let contains = !wanted.is_empty() && (k.contains(wanted) || wanted.contains(k));
            (if contains { d.min(2) } else { d }, k)
        })
        .collect();
    scored.sort();
    let limit = wanted.chars().count().max(2);
    scored
        .into_iter()
        .filter(|(d, _)| *d <= limit)
        .take(3)
        .map(|(_, k)| k.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn suggests_near_chinese_names() {
        let known = ["白鹤", "白鹤第二", "佳佳", "赵屯"];
        assert_eq!(closest("白鹤第三", known.iter().copied())[0], "白鹤第二");
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
