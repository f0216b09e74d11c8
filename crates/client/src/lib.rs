//! A small blocking HTTP/1.1 client for `eduledger serve`: what `eduledger follow` and the
//! command line as a client need, and nothing more — one request per connection, bearer
//! tokens, bodies by length, chunked or to the end, TLS by rustls trusting only the
//! certificate authority it is given (a bureau's own, not the web's).

/// Largest CA certificate file `--ca` reads.
pub const MAX_CA_BYTES: u64 = 1 << 20;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Largest response head read.
pub const MAX_HEAD: usize = 64 << 10;
/// Largest response body read whole (a stream has no limit: it is read line by line).
pub const MAX_BODY: u64 = 1 << 30;
/// Longest line read from a stream (an export line is at most 16 MiB).
pub const MAX_LINE: usize = (16 << 20) + 1024;
/// How long connecting may take.
pub const CONNECT: Duration = Duration::from_secs(10);
/// Longest silence on a connection before it is given up: longer than the server's own
/// limit on a read (300 s, then 408), so a slow historical read ends with the server's
/// answer rather than the client's guess (the feed sends a comment every 15 s).
pub const SILENCE: Duration = Duration::from_secs(310);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server's address or the options are wrong.
    #[error("{0}")]
    Usage(String),
    /// The answer is not HTTP this client reads, or the connection failed for good (a
    /// certificate not trusted, say).
    #[error("{0}")]
    Transport(String),
    /// The connection was refused, reset, closed or went silent before an answer: sending
    /// the same request again may succeed.
    #[error("{0}")]
    Interrupted(String),
}

type Result<T> = std::result::Result<T, ClientError>;

/// Response headers, names in lower case.
pub type Headers = Vec<(String, String)>;

fn transport(what: &str) -> impl Fn(std::io::Error) -> ClientError + '_ {
    use std::io::ErrorKind as K;
    move |e| {
        let message = format!("{what}: {e}");
        match e.kind() {
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::TimedOut
            | K::WouldBlock
            | K::UnexpectedEof
            | K::NotConnected => ClientError::Interrupted(message),
            _ => ClientError::Transport(message),
        }
    }
}

/// A server, with the token to present.
#[derive(Clone)]
pub struct Remote {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: String,
}

/// An answer read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

impl Remote {
    /// `url` is `http://HOST:PORT` or `https://HOST:PORT` (a path after it is refused);
    /// `ca` is the PEM certificate (or chain) to trust for https.
    pub fn new(url: &str, token: &str, ca: Option<&Path>) -> Result<Remote> {
        let usage = |why: &str| ClientError::Usage(format!("server {url:?}: {why}"));
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(usage("it must start with http:// or https://"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('?') || authority.contains('@') {
            return Err(usage("give only the scheme, host and port (no path)"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| usage("the port is not a number from 1 to 65535"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(usage("no host"));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = bare.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !tls && !loopback {
            return Err(usage(
                "a token never crosses a network in clear: use https:// (with --ca), or http:// on this machine only",
            ));
        }
        if token.trim().bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(ClientError::Usage(
                "the token holds characters a token never has (it is edl_ and hex digits)".into(),
            ));
        }
        if token.trim().is_empty() {
            return Err(ClientError::Usage(
                "a token is needed (--token or EDULEDGER_TOKEN); `eduledger access grant` gives one"
                    .into(),
            ));
        }
        let tls = if tls {
            let ca = ca.ok_or_else(|| {
                usage("https needs the certificate to trust: --ca FILE (or EDULEDGER_CA)")
            })?;
            Some(client_config(ca)?)
        } else {
            None
        };
        Ok(Remote {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            tls,
            token: token.trim().to_owned(),
        })
    }

    fn connect(&self) -> Result<Box<dyn Stream>> {
        use std::net::ToSocketAddrs;
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(transport(&format!("resolving {}", self.host)))?
            .collect();
        let mut last = None;
        let mut sock = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let sock = sock.ok_or_else(|| {
            ClientError::Interrupted(format!(
                "cannot connect to {}:{}: {}",
                self.host,
                self.port,
                last.map_or("no address".to_owned(), |e| e.to_string())
            ))
        })?;
        let _ = sock.set_nodelay(true);
        sock.set_read_timeout(Some(SILENCE))
            .and_then(|_| sock.set_write_timeout(Some(SILENCE)))
            .map_err(transport("setting the connection's timeouts"))?;
        match &self.tls {
            None => Ok(Box::new(sock)),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| {
                    ClientError::Usage(format!("{:?} is not a TLS server name: {e}", self.host))
                })?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| ClientError::Transport(format!("TLS: {e}")))?;
                Ok(Box::new(rustls::StreamOwned::new(conn, sock)))
            }
        }
    }

    /// The `Host` header's value: an IPv6 address in brackets, as in a URL (`[::1]:8080`).
    fn host_header(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }

    /// Send a request and read the answer's head; the body is left in the reader.
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Headers, Body)> {
        let mut stream = self.connect()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n",
            self.host_header(),
            self.token,
            body.len()
        );
        for (name, value) in headers {
            if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
                return Err(ClientError::Usage(format!("header {name:?}: not a header")));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|_| stream.write_all(body))
            .and_then(|_| stream.flush())
            .map_err(transport("sending the request"))?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        read_line(&mut reader, &mut status_line, MAX_HEAD)?;
        let status = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                ClientError::Transport(format!(
                    "the answer is not HTTP/1.x: {:?}",
                    status_line.trim_end()
                ))
            })?;
        let mut headers = Vec::new();
        let mut size = status_line.len();
        loop {
            let mut line = String::new();
            read_line(&mut reader, &mut line, MAX_HEAD)?;
            size += line.len();
            if size > MAX_HEAD {
                return Err(ClientError::Transport(format!(
                    "the answer's head is over {MAX_HEAD} bytes"
                )));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ClientError::Transport(format!("not a header line: {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let body = if header(&headers, "transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            Body::Chunked(Chunked {
                inner: reader,
                left: 0,
                done: false,
            })
        } else if let Some(len) = header(&headers, "content-length") {
            let len: u64 = len
                .parse()
                .map_err(|_| ClientError::Transport(format!("Content-Length: {len:?}")))?;
            Body::Plain(Box::new(Exact {
                inner: reader,
                left: len,
            }))
        } else {
            Body::Plain(Box::new(reader))
        };
        Ok((status, headers, body))
    }

    /// A GET whose answer, if 200, is copied into `out` as it arrives (an export of any
    /// size) — whole, or an error: an answer whose end cannot be told from a broken
    /// connection (neither a length nor chunks) is refused. Any other answer is read whole,
    /// for its reason. The status, and that reason.
    pub fn copy(&self, path: &str, out: &mut dyn Write) -> Result<(u16, Vec<u8>)> {
        let (status, headers, mut body) = self.send("GET", path, &[], b"")?;
        if status == 200
            && matches!(body, Body::Plain(_))
            && header(&headers, "content-length").is_none()
        {
            return Err(ClientError::Transport(
                "the answer has neither a length nor chunks: a broken connection could not be told from its end".into(),
            ));
        }
        if status != 200 {
            let mut reason = Vec::new();
            body.take(1 << 20)
                .read_to_end(&mut reason)
                .map_err(transport("reading the answer"))?;
            return Ok((status, reason));
        }
        std::io::copy(&mut body, out).map_err(transport("copying the answer"))?;
        Ok((status, Vec::new()))
    }

    /// A request whose answer is read whole (at most [`MAX_BODY`] bytes).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let (status, headers, body) = self.send(method, path, headers, body)?;
        let mut out = Vec::new();
        let mut limited = body.take(MAX_BODY + 1);
        limited
            .read_to_end(&mut out)
            .map_err(transport("reading the answer"))?;
        if out.len() as u64 > MAX_BODY {
            return Err(ClientError::Transport(format!(
                "the answer is over {MAX_BODY} bytes"
            )));
        }
        Ok(Response {
            status,
            headers,
            body: out,
        })
    }

    /// A request whose answer is read as it comes (a feed): the status, the headers and the
    /// body as lines.
    pub fn stream(&self, path: &str, headers: &[(&str, &str)]) -> Result<(u16, Headers, Lines)> {
        let (status, h, body) = self.send("GET", path, headers, b"")?;
        Ok((
            status,
            h,
            Lines {
                inner: BufReader::new(body),
            },
        ))
    }
}

fn read_line(r: &mut impl BufRead, out: &mut String, max: usize) -> Result<()> {
    let n = r
        .by_ref()
        .take(max as u64 + 1)
        .read_line(out)
        .map_err(transport("reading the answer"))?;
    if n == 0 {
        return Err(ClientError::Interrupted(
            "the server closed the connection without answering".into(),
        ));
    }
    if n > max {
        return Err(ClientError::Transport(format!(
            "a line of the answer is over {max} bytes"
        )));
    }
    Ok(())
}

fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let size = std::fs::metadata(ca)
        .map_err(|e| ClientError::Usage(format!("--ca {}: {e}", ca.display())))?
        .len();
    if size > 1 << 20 {
        return Err(ClientError::Usage(format!(
            "--ca {}: {size} bytes; a PEM file of at most 1 MiB is expected",
            ca.display()
        )));
    }
    let pem = eduledger_files::read_bounded(ca, MAX_CA_BYTES)
        .map_err(|e| ClientError::Usage(format!("--ca: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            ClientError::Usage(format!(
                "--ca {}: not a PEM certificate ({e})",
                ca.display()
            ))
        })?;
        roots.add(cert).map_err(|e| {
            ClientError::Usage(format!(
                "--ca {}: not a usable certificate ({e})",
                ca.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(ClientError::Usage(format!(
            "--ca {}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
            ca.display()
        )));
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Usage(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A response body.
enum Body {
    Plain(Box<dyn Read + Send>),
    Chunked(Chunked<BufReader<Box<dyn Stream>>>),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Body::Plain(r) => r.read(buf),
            Body::Chunked(c) => c.read(buf),
        }
    }
}

/// A body of a known length: ending before it is an error, never a shorter body.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the answer ended {} bytes before its length", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// `Transfer-Encoding: chunked`, undone.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.by_ref().take(1024).read_line(&mut line)?;
            if line.is_empty() {
                return Err(bad("the chunked answer ended early"));
            }
            let size = line.trim_end().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size.trim(), 16)
                .map_err(|_| bad("a chunk size is not hexadecimal"))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(bad("the chunked answer ended inside a chunk"));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
            if &crlf != b"\r\n" {
                return Err(bad("a chunk does not end with CRLF"));
            }
        }
        Ok(n)
    }
}

/// A streamed body, line by line.
pub struct Lines {
    inner: BufReader<Body>,
}

impl Lines {
    /// Whether more of the stream is already here (read, not yet consumed): a reader
    /// batching what it reads flushes when this turns false.
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
            || match self.inner.get_ref() {
                Body::Chunked(c) => c.left > 0 || !c.inner.buffer().is_empty(),
                Body::Plain(_) => false,
            }
    }

    /// The next line without its end, or None at the end of the stream.
    pub fn next_line(&mut self) -> Result<Option<String>> {
        let mut line = String::new();
        let n = self
            .inner
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .map_err(transport("reading the stream"))?;
        if n == 0 {
            return Ok(None);
        }
        if n > MAX_LINE {
            return Err(ClientError::Transport(format!(
                "a line of the stream is over {MAX_LINE} bytes"
            )));
        }
        Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_shorter_than_its_length_is_an_error() {
        let mut whole = Exact {
            inner: &b"hello"[..],
            left: 5,
        };
        let mut out = String::new();
        whole.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        let mut cut = Exact {
            inner: &b"hel"[..],
            left: 5,
        };
        let e = cut.read_to_string(&mut String::new()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn chunked_bodies_are_undone_and_malformed_ones_refused() {
        let raw = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        let mut c = Chunked {
            inner: &raw[..],
            left: 0,
            done: false,
        };
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello, world");
        let mut c = Chunked {
            inner: &b"zz\r\nhello"[..],
            left: 0,
            done: false,
        };
        assert!(c.read_to_string(&mut String::new()).is_err());
        let mut c = Chunked {
            inner: &b"5\r\nhel"[..],
            left: 0,
            done: false,
        };
        assert!(c.read_to_string(&mut String::new()).is_err());
    }

    #[test]
    fn addresses_are_read_or_refused_with_a_reason() {
        let r = Remote::new("http://127.0.0.1:8080/", "t", None).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 8080));
        let r = Remote::new("http://[::1]:9", "t", None).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", 9));
        assert_eq!(r.host_header(), "[::1]:9");
        let r = Remote::new("http://127.0.0.1:8080/", "t", None).unwrap();
        assert_eq!(r.host_header(), "127.0.0.1:8080");
        let e = Remote::new("http://ledger.example:80", "t", None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("https"), "no token in clear: {e}");
        for bad in ["ftp://x", "http://x:99999", "http://x/v1", "http://"] {
            assert!(Remote::new(bad, "t", None).is_err(), "{bad}");
        }
        assert!(
            Remote::new("http://x:1", " ", None).is_err(),
            "a token is needed"
        );
        let e = Remote::new("https://x:1", "t", None).err().unwrap();
        assert!(e.to_string().contains("--ca"), "{e}");
    }
}
