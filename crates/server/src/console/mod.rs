//! The auditors' console at `/`: pages for people, in Chinese, rendered on the server from
//! the same reads as the command line and the API (`eduledger-query`) — a page, an endpoint
//! and a command are three renderings of one answer. Everything it needs is in the binary
//! (no CDN: bureau intranets are often offline); every page works without JavaScript but
//! the live feed and the overview's slider.
//!
//! Access: a token typed once at `/login` opens a server-side session ([`session`]); every
//! page checks the session's token against the published ledger again, so a revoked token
//! ends its sessions at once. Without a session a page redirects to `/login`; the only
//! things served without one are the login form and the two static assets, which carry no
//! ledger data.

mod chart;
mod pages;
pub(super) mod session;

use std::time::Instant;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Extension, Form, Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use eduledger_domain::values::{Date, REPORT_YEARS};
use eduledger_ledger::Ledger;
use eduledger_query::{self as query, EntityKind, Query, QueryError};
use maud::Markup;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{App, Caller};
use pages::Frame;

/// The stylesheet (screen and print), served at `/assets/console.css`.
const CSS: &str = include_str!("console.css");
/// The slider and the live feed, served at `/assets/console.js`.
const JS: &str = include_str!("console.js");
/// The icon, served at `/assets/icon.svg` and `/favicon.ico`.
const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="2" y="1" width="12" height="14" rx="1" fill="#0d3b66"/><path d="M4 5h8M4 8h8M4 11h5" stroke="#f4d35e" stroke-width="1.4"/></svg>"##;
/// Largest login form accepted.
const MAX_LOGIN_BODY: usize = 8 * 1024;
/// Events the ledger page lists (newest first) before the live feed adds more.
const RECENT_EVENTS: u64 = 20;

/// The console's routes (merged into the server's router).
pub(super) fn routes(app: App) -> Router<App> {
    // pages are timed out as the API's reads are (a historical one may wait its turn); the
    // export and the feed stream for as long as they need
    let pages = Router::new()
        .route("/", get(overview))
        .route("/groups/{name}", get(group))
        .route("/kindergartens/{name}", get(kindergarten))
        .route("/teachers/{staff_no}", get(teacher))
        .route("/tally/{year}", get(tally))
        .route("/compliance/{year}", get(compliance))
        .route("/history/{kind}/{id}", get(history))
        .route("/events/{seq}", get(event))
        .route("/ledger", get(ledger))
        // (a page not ready in time is the server's delay, not the reader's: 503, said in
        // words and with the console's headers)
        .route_layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_secs(super::REQUEST_SECONDS),
        ))
        .route_layer(axum::middleware::map_response(too_slow))
        .route("/ledger/export", get(export))
        .route("/ledger/feed", get(feed))
        .route_layer(axum::middleware::from_fn_with_state(app, require_session));
    Router::new()
        .merge(pages)
        // (no session needed: logging out without one just lands on the form)
        .route("/logout", post(logout))
        .route(
            "/login",
            get(login_form)
                .post(login)
                .layer(DefaultBodyLimit::max(MAX_LOGIN_BODY)),
        )
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/assets/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
}

/// Headers every console answer carries: nothing from elsewhere may run, frame or be
/// fetched; pages are never cached (a shared computer's back button after logout); no
/// address leaves for another site (`same-origin`, not `no-referrer`: under that a browser
/// sends `Origin: null` with our own login form, which [`cross_site`] must refuse).
fn guarded(mut response: Response, cache: bool) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if cache {
            "public, max-age=300"
        } else {
            "no-store"
        }),
    );
    response
}

fn html(status: StatusCode, page: Markup, started: Option<Instant>) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response();
    if let Some(t) = started {
        // the server's own time for the page, read by the benchmark and the browser's tools
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if let Ok(v) = HeaderValue::from_str(&format!("page;dur={ms:.2}")) {
            r.headers_mut().insert("server-timing", v);
        }
    }
    guarded(r, false)
}

/// The timeout's bare 503 (no body, no type) as a sentence with the console's headers; every
/// other answer passes unchanged.
async fn too_slow(response: Response) -> Response {
    if response.status() != StatusCode::SERVICE_UNAVAILABLE
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    guarded(
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "页面未能在 {} 秒内生成（服务器正忙于其他“按记录截至”的读取），请稍后再试。\n",
                super::REQUEST_SECONDS
            ),
        )
            .into_response(),
        false,
    )
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    guarded(r, false)
}

async fn css() -> Response {
    guarded(
        ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response(),
        true,
    )
}

async fn js() -> Response {
    guarded(
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            JS,
        )
            .into_response(),
        true,
    )
}

/// The console's icon: a ledger's ruled page (browsers ask for one; a 404 is an error in
/// their console).
async fn icon() -> Response {
    guarded(
        ([(header::CONTENT_TYPE, "image/svg+xml")], ICON).into_response(),
        true,
    )
}

/// Percent-encode a path segment or a query value (everything but the unreserved).
fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after logging in: a path on this server, or the overview. (Never another
/// host: `//evil` and `/\evil` are hosts to a browser; never `/logout`, a form's target.)
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.starts_with("/logout")
                && p.len() <= 2048
                && !p.chars().any(|c| c.is_control()) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Pages need a session whose token is still in force; without one, to the login form
/// (which brings the reader back here).
async fn require_session(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id = session::cookie(request.headers(), app.secure);
    let caller = id.as_deref().and_then(|id| session_caller(&app, id));
    match caller {
        Some(caller) => {
            let mut request = request;
            request
                .extensions_mut()
                .insert(Session(id.unwrap_or_default()));
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => {
            if let Some(id) = id {
                app.sessions.close(&id);
            }
            let here = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            match here {
                "/" => redirect("/login"),
                _ => redirect(&format!("/login?next={}", enc(here))),
            }
        }
    }
}

/// The principal behind a session id: the session open and its token still in force.
fn session_caller(app: &App, id: &str) -> Option<Caller> {
    let s = app.sessions.get(id)?;
    super::caller_by_token_sha(app, s.token_sha256).ok()
}

/// The same, without counting as a use of the session (the live feed's checks).
fn session_still(app: &App, id: &str) -> bool {
    app.sessions
        .peek(id)
        .is_some_and(|s| super::caller_by_token_sha(app, s.token_sha256).is_ok())
}

/// The session id a page was served under (for the feed, which checks it again).
#[derive(Clone)]
struct Session(String);

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login_form(q: Result<UrlQuery<LoginQuery>, QueryRejection>) -> Response {
    let next = q.ok().and_then(|UrlQuery(q)| q.next);
    html(
        StatusCode::OK,
        pages::login(&local_path(next.as_deref()), None),
        None,
    )
}

/// A form posted from anywhere but this origin is refused. A browser that says where a
/// request comes from (`Sec-Fetch-Site`, which no page can set) is believed: only
/// `same-origin` (or `none`, typed by the user) passes — `same-site` is another host of the
/// same intranet domain. It judges by the address the reader sees, so this holds behind a
/// proxy too. Without it, `Origin`, when sent, must name this host (a proxy that rewrites
/// `Host` then needs to pass it on).
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).map(|o| o.to_str().ok());
    match (origin, host) {
        (None, _) => false,
        (Some(Some(o)), Some(h)) => {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                != Some(h)
        }
        _ => true,
    }
}

async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if cross_site(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            pages::login("/", Some("登录表单只能从本站提交。")),
            None,
        );
    }
    let Ok(Form(form)) = form else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::login("/", Some("登录表单只有一个字段：token（令牌）。")),
            None,
        );
    };
    let next = local_path(form.next.as_deref());
    // a session the browser already carried ends here (a planted id never becomes one)
    if let Some(old) = session::cookie(&headers, app.secure) {
        app.sessions.close(&old);
    }
    let token = form.token.trim();
    let sha = hex::encode(Sha256::digest(token.as_bytes()));
    if token.is_empty() || super::caller_by_token_sha(&app, sha.clone()).is_err() {
        return html(
            StatusCode::UNAUTHORIZED,
            pages::login(
                &next,
                Some(
                    "令牌无效、已撤销或尚未生效（token: 请使用 eduledger access grant 发放的令牌）。",
                ),
            ),
            None,
        );
    }
    match app.sessions.open(sha) {
        Ok(id) => {
            let mut r = redirect(&next);
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, app.secure)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(why) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::login(&next, Some(&why)),
            None,
        ),
    }
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if cross_site(&headers) {
        return guarded(StatusCode::FORBIDDEN.into_response(), false);
    }
    if let Some(id) = session::cookie(&headers, app.secure) {
        app.sessions.close(&id);
    }
    let mut r = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(app.secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The time controls every page takes: `on` (valid time) and `known_at` (transaction
/// time), as the API and the command line; an empty field means "not given".
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PageParams {
    on: Option<String>,
    known_at: Option<String>,
    /// The ledger page: a digest to check.
    digest: Option<String>,
    /// The feed: the first sequence wanted.
    from: Option<u64>,
}

fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// What a page shows besides its answer: who reads, when, and where. An audit page (a
/// trail, an event, the ledger) lists every date: its read takes no `on` ([`show`]), which
/// is only carried along to the pages it links.
fn frame(caller: &Caller, params: &PageParams, path: &Uri, audit: bool) -> Frame {
    let on = given(params.on.clone());
    let year = on
        .as_deref()
        .and_then(|t| Date::parse(t).ok())
        .unwrap_or_else(eduledger_ledger::clock::today)
        .year();
    Frame {
        principal: caller.name.clone(),
        role: caller.role.code().to_owned(),
        on,
        known_at: given(params.known_at.clone()),
        path: path.path().to_owned(),
        year: year.clamp(*REPORT_YEARS.start(), *REPORT_YEARS.end()),
        audit,
    }
}

/// Run a page's reads on the blocking pool (historical ones a few at a time, as the API's)
/// and render it; a read that gives no answer is shown as its sentence, the controls kept.
async fn show<T: Send + 'static>(
    app: &App,
    frame: Frame,
    title: String,
    read: impl FnOnce(&Ledger, &Query) -> Result<T, QueryError> + Send + 'static,
    render: impl FnOnce(T, &Frame) -> Markup,
) -> Response {
    let started = Instant::now();
    let q = Query {
        on: frame.on.clone().filter(|_| !frame.audit),
        known_at: frame.known_at.clone(),
        max_bytes: Some(super::MAX_ANSWER_BYTES),
        spelling: query::Spelling::Parameters,
    };
    match super::on_blocking_pool(app, q.known_at.is_some(), move |l| read(l, &q)).await {
        Ok(Ok(t)) => html(StatusCode::OK, render(t, &frame), Some(started)),
        Ok(Err(e)) => html(
            super::status_of(&e),
            pages::trouble(&frame, &title, &e.to_string()),
            Some(started),
        ),
        Err(_) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::trouble(&frame, &title, "这次读取异常中止。"),
            Some(started),
        ),
    }
}

/// A page's query string could not be read: say so, in the page.
fn bad_params(caller: &Caller, uri: &Uri, why: &str) -> Response {
    let f = frame(caller, &PageParams::default(), uri, false);
    html(
        StatusCode::BAD_REQUEST,
        pages::trouble(
            &f,
            "参数有误",
            &format!("{why}（页面只接受 on=日期 与 known_at=日期、时间或 seq:N）"),
        ),
        None,
    )
}

type Params = Result<UrlQuery<PageParams>, QueryRejection>;

/// A page's request, read before its handler runs: who reads (the session's principal) and
/// the time controls; a query string that cannot be read is answered in a page. `AUDIT`: a
/// page that lists every date ([`Frame::audit`]).
struct Page<const AUDIT: bool> {
    frame: Frame,
    params: PageParams,
}

impl<S: Send + Sync, const AUDIT: bool> axum::extract::FromRequestParts<S> for Page<AUDIT> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Response> {
        // (set by `require_session`, which every page is behind)
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| redirect("/login"))?;
        let UrlQuery(params) = UrlQuery::<PageParams>::try_from_uri(&parts.uri)
            .map_err(|why| bad_params(&caller, &parts.uri, &why.body_text()))?;
        // `from` is the feed's, `digest` the ledger page's: elsewhere they are a mistake
        if params.from.is_some() || (params.digest.is_some() && parts.uri.path() != "/ledger") {
            return Err(bad_params(
                &caller,
                &parts.uri,
                "this page takes neither `from` nor `digest`",
            ));
        }
        Ok(Page {
            frame: frame(&caller, &params, &parts.uri, AUDIT),
            params,
        })
    }
}

/// The compliance report for the page's year, if the question has an answer (pages that
/// show a part of it still show the rest without it); a ledger that cannot be read is said.
fn compliance_of(l: &Ledger, year: i32, q: &Query) -> Result<Option<query::Report>, QueryError> {
    match query::compliance(l, year, q) {
        Ok(r) => Ok(Some(r)),
        Err(QueryError::Ledger(why)) => Err(QueryError::Ledger(why)),
        Err(_) => Ok(None),
    }
}

async fn overview(State(app): State<App>, Page { frame: f, .. }: Page<false>) -> Response {
    let year = f.year;
    show(
        &app,
        f,
        "总览".into(),
        move |l, q| {
            let groups = query::groups(l, q)?;
            let first = query::first_founding(l, q)?;
            Ok((groups, compliance_of(l, year, q)?, first))
        },
        |(groups, compliance, first), f| pages::overview(f, &groups, compliance.as_ref(), first),
    )
    .await
}

async fn group(
    State(app): State<App>,
    Path(name): Path<String>,
    Page { frame: f, .. }: Page<false>,
) -> Response {
    let year = f.year;
    show(
        &app,
        f,
        name.clone(),
        move |l, q| Ok((query::group(l, &name, q)?, compliance_of(l, year, q)?)),
        |(g, c), f| pages::group(f, &g, c.as_ref()),
    )
    .await
}

async fn kindergarten(
    State(app): State<App>,
    Path(name): Path<String>,
    Page { frame: f, .. }: Page<false>,
) -> Response {
    show(
        &app,
        f,
        format!("园所 {name}"),
        move |l, q| query::kindergarten(l, &name, q),
        |k, f| pages::kindergarten(f, &k),
    )
    .await
}

async fn teacher(
    State(app): State<App>,
    Path(staff_no): Path<String>,
    Page { frame: f, .. }: Page<false>,
) -> Response {
    show(
        &app,
        f,
        format!("教师 {staff_no}"),
        move |l, q| query::teacher(l, &staff_no, q),
        |t, f| pages::teacher(f, &t),
    )
    .await
}

/// A year in a path: a number in the range reports cover.
fn year_of(text: &str) -> Result<i32, String> {
    text.parse::<i32>()
        .ok()
        .filter(|y| REPORT_YEARS.contains(y))
        .ok_or_else(|| {
            format!(
                "年份 {text:?} 无效：应为 {} 至 {} 之间的整数",
                REPORT_YEARS.start(),
                REPORT_YEARS.end()
            )
        })
}

async fn tally(
    State(app): State<App>,
    Path(year): Path<String>,
    Page { frame: f, .. }: Page<false>,
) -> Response {
    let title = format!("{year} 年度积分");
    show(
        &app,
        f,
        title,
        move |l, q| {
            let year = year_of(&year).map_err(QueryError::Usage)?;
            query::tally(l, year, true, None, q)
        },
        |t, f| pages::tally(f, &t),
    )
    .await
}

async fn compliance(
    State(app): State<App>,
    Path(year): Path<String>,
    Page { frame: f, .. }: Page<false>,
) -> Response {
    let title = format!("{year} 年度合规");
    show(
        &app,
        f,
        title,
        move |l, q| {
            let year = year_of(&year).map_err(QueryError::Usage)?;
            Ok((year, query::compliance(l, year, q)?))
        },
        |(year, c), f| pages::compliance(f, year, &c),
    )
    .await
}

async fn history(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
    Page { frame: f, .. }: Page<true>,
) -> Response {
    show(
        &app,
        f,
        format!("档案 {kind} {id}"),
        move |l, q| {
            let kind = EntityKind::parse(&kind).map_err(QueryError::Usage)?;
            Ok((kind, query::history(l, kind, &id, q)?))
        },
        |(kind, h), f| pages::history(f, kind, &h),
    )
    .await
}

async fn event(
    State(app): State<App>,
    Path(seq): Path<String>,
    Page { frame: f, .. }: Page<true>,
) -> Response {
    show(
        &app,
        f,
        format!("事件 {seq}"),
        move |l, q| {
            let n = seq.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                QueryError::Usage(format!("事件序号 {seq:?} 无效：应为从 1 起的整数"))
            })?;
            let log = query::log(l, n, 1, q)?;
            let found = log.json["events"]
                .get(0)
                .is_some_and(|e| e["seq"].as_u64() == Some(n));
            if !found {
                let upto = log.json["head"]["seq"].as_u64().unwrap_or(0);
                return Err(QueryError::Refused(format!(
                    "序号 {n} 不在账本中：此时账本记录到 {upto}"
                )));
            }
            Ok((n, log))
        },
        |(n, log), f| pages::event(f, n, &log),
    )
    .await
}

/// What the ledger page shows: the recent events and, if asked, a digest checked.
struct LedgerPage {
    log: query::Report,
    /// The digest asked about and what the chain says of it.
    checked: Option<(String, Result<bool, String>)>,
}

async fn ledger(State(app): State<App>, Page { frame: f, params }: Page<true>) -> Response {
    let digest = given(params.digest);
    show(
        &app,
        f,
        "账本".into(),
        move |l, q| {
            let head = l.head()?.seq;
            let top = match &q.known_at {
                Some(k) => query::resolve_known_at(l.store(), "known_at", k)?.min(head),
                None => head,
            };
            let from = top.saturating_sub(RECENT_EVENTS - 1).max(1);
            let log = query::log(l, from, RECENT_EVENTS as usize, q)?;
            // a digest past the cut is not part of the history as known then
            let checked = digest.map(|d| {
                let verdict = super::parse_digest(&d).and_then(|(seq, hash)| match seq > top {
                    true => Err(format!(
                        "✗ 摘要序号 {seq} 在截至点（seq:{top}）之后：那时账本尚未记录到它。"
                    )),
                    false => {
                        super::hash_at(l, seq).map(|found| found.as_deref() == Some(hash.as_str()))
                    }
                });
                (d, verdict)
            });
            Ok(LedgerPage { log, checked })
        },
        |page, f| pages::ledger(f, &page.log, page.checked.as_ref()),
    )
    .await
}

/// The whole export, as `/v1/export` and the command line write it, as a download; it
/// takes no parameters (in particular no `known_at`: an export is the whole ledger).
async fn export(State(app): State<App>, uri: Uri) -> Response {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return guarded(
            (
                StatusCode::BAD_REQUEST,
                "/ledger/export takes no parameters: it is always the whole ledger\n",
            )
                .into_response(),
            false,
        );
    }
    let view = app.published.load_full();
    let head = view.state().head();
    let mut r = super::export_view(view).await;
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"eduledger-export-{head}.jsonl\""
    )) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    guarded(r, false)
}

/// The live feed for the ledger page: the API's feed, each event unnamed so that a page's
/// `EventSource` hears every type. It ends when the session does (logout, expiry, the token
/// revoked): checked before every event it sends. It takes only `from`.
async fn feed(
    State(app): State<App>,
    Extension(Session(id)): Extension<Session>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let from = match params {
        Ok(UrlQuery(p)) if p.on.is_none() && p.known_at.is_none() && p.digest.is_none() => p.from,
        _ => {
            return guarded(
                (
                    StatusCode::BAD_REQUEST,
                    "/ledger/feed takes only from=SEQ: it follows the ledger as it grows\n",
                )
                    .into_response(),
                false,
            );
        }
    };
    let check = app.clone();
    let still = std::sync::Arc::new(move || session_still(&check, &id));
    super::feed_response(app, &headers, from, false, still)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_login_only_a_path_on_this_server_is_followed() {
        assert_eq!(
            local_path(Some("/tally/2024?on=2024-12-31")),
            "/tally/2024?on=2024-12-31"
        );
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "",
            "x",
        ] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(local_path(Some("/a\nb")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[tokio::test]
    async fn the_timeouts_bare_503_is_said_in_words_with_the_consoles_headers() {
        let r = too_slow(StatusCode::SERVICE_UNAVAILABLE.into_response()).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        // a page's own 503 (a ledger that cannot be read) passes as it is
        let page = html(
            StatusCode::SERVICE_UNAVAILABLE,
            maud::html! { p { "x" } },
            None,
        );
        let r = too_slow(page).await;
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
    }

    #[test]
    fn a_name_is_encoded_for_a_path() {
        assert_eq!(enc("佳佳"), "%E4%BD%B3%E4%BD%B3");
        assert_eq!(enc("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(enc("seq:12"), "seq%3A12");
    }
}
