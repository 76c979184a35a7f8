//! The HTTP/1.1 half of `httpd` that needs no system: finding and parsing
//! a request head, mapping its target to a path under the served root,
//! and writing response heads. Everything here takes bytes from the
//! network and answers with a status, never a panic.
//!
//! Limits: a request line of at most [`MAX_LINE`] bytes (`414`), a head of
//! at most [`MAX_HEAD`] bytes (`431`). Only `GET` and `HEAD` are served
//! (`405` for other methods); a request with a body in chunks is refused
//! (`400`); a `Content-Length` body is skipped.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use core::fmt::Write;

/// The longest request line.
pub const MAX_LINE: usize = 1024;
/// The longest request head: the request line, the headers and the empty
/// line.
pub const MAX_HEAD: usize = 2048;
/// The longest path a target maps to.
pub const MAX_PATH: usize = 1024;

/// A response status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok = 200,
    BadRequest = 400,
    NotFound = 404,
    MethodNotAllowed = 405,
    UriTooLong = 414,
    HeadersTooLarge = 431,
    InternalError = 500,
    VersionNotSupported = 505,
}

impl Status {
    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::UriTooLong => "URI Too Long",
            Status::HeadersTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// Whether the connection can go on after this answer: not after a
    /// request that could not be read, since where the next one starts is
    /// unknown.
    pub fn keeps_connection(self) -> bool {
        matches!(
            self,
            Status::Ok | Status::NotFound | Status::MethodNotAllowed | Status::InternalError
        )
    }
}

/// Where a request head ends in the bytes received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Not all there yet.
    Incomplete,
    /// The head is the first `n` bytes (the empty line included).
    Complete(usize),
    /// Too long to wait for: answer this and close.
    Refused(Status),
}

/// Looks for the end of the request head in `buf` (CRLF CRLF, or bare LF
/// LF from lenient clients). Empty lines before the request line are
/// skipped by [`parse`], as RFC 9112 allows, but count towards the limit.
pub fn scan(buf: &[u8]) -> Scan {
    let mut line_start = 0;
    let mut first_line = true;
    for (i, &b) in buf.iter().enumerate() {
        if i >= MAX_HEAD {
            return Scan::Refused(Status::HeadersTooLarge);
        }
        if b != b'\n' {
            continue;
        }
        let line = buf.get(line_start..i).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if first_line {
            if line.len() > MAX_LINE {
                return Scan::Refused(Status::UriTooLong);
            }
            if !line.is_empty() {
                first_line = false;
            }
        } else if line.is_empty() {
            return Scan::Complete(i + 1);
        }
        line_start = i + 1;
    }
    let open = buf.len().saturating_sub(line_start);
    if first_line && open > MAX_LINE {
        Scan::Refused(Status::UriTooLong)
    } else if buf.len() >= MAX_HEAD {
        Scan::Refused(Status::HeadersTooLarge)
    } else {
        Scan::Incomplete
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

/// A request that may be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Method,
    /// As sent (not decoded): see [`map_path`].
    pub target: &'a [u8],
    /// The connection stays open after the answer.
    pub keep_alive: bool,
    /// Bytes of body after the head, to skip.
    pub body: u64,
}

/// A request that is refused: the status, and whether the connection may
/// stay open after the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub keep_alive: bool,
    /// Bytes of body to skip when it does.
    pub body: u64,
}

impl Refusal {
    fn closing(status: Status) -> Refusal {
        Refusal {
            status,
            keep_alive: false,
            body: 0,
        }
    }
}

/// A token character of RFC 9110 (methods, header names).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Whether comma-separated `list` holds `token`, case-insensitively.
fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// Parses a request head as [`scan`] delimited it.
pub fn parse(head: &[u8]) -> Result<Request<'_>, Refusal> {
    let bad = || Refusal::closing(Status::BadRequest);
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty());
    let line = lines.next().ok_or_else(bad)?;
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(bad());
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        [b'H', b'T', b'T', b'P', b'/', d, b'.', e] if d.is_ascii_digit() && e.is_ascii_digit() => {
            return Err(Refusal::closing(Status::VersionNotSupported))
        }
        _ => return Err(bad()),
    };
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    let mut keep_alive = http11;
    let mut body: Option<u64> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        // Folded lines (obsolete) and lines without a name are refused.
        let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
        let (name, value) = line.split_at(colon);
        let value = trim(value.get(1..).unwrap_or(&[]));
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad());
        }
        if value.iter().any(|&b| b == 0 || b == b'\r') {
            return Err(bad());
        }
        if name.eq_ignore_ascii_case(b"connection") {
            if has_token(value, b"close") {
                keep_alive = false;
            } else if has_token(value, b"keep-alive") {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = decimal(value).ok_or_else(bad)?;
            // Two lengths that differ: where the next request starts is
            // unknown (request smuggling).
            if body.is_some_and(|b| b != n) {
                return Err(bad());
            }
            body = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(bad());
        }
    }
    let body = body.unwrap_or(0);
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => {
            return Err(Refusal {
                status: Status::MethodNotAllowed,
                keep_alive,
                body,
            })
        }
    };
    Ok(Request {
        method,
        target,
        keep_alive,
        body,
    })
}

/// A decimal number of at most 18 digits.
fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        s.iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d.saturating_sub(b'0'))),
    )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A path under the served root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// `root` and the decoded segments of the target.
    pub path: String,
    /// The target ended in `/`: it names a directory.
    pub directory: bool,
}

/// Maps a request target (origin form: `/a/b?query`) to a path under
/// `root`: the query and fragment dropped, `%XX` decoded, empty and `.`
/// segments dropped. Refused (`400`): a target not starting with `/`, a
/// bad `%` escape, a `..` segment, NUL, a backslash or a control byte
/// (also when encoded), a path that is not UTF-8; `414` past
/// [`MAX_PATH`].
pub fn map_path(root: &str, target: &[u8]) -> Result<Mapped, Status> {
    let target = target
        .split(|&b| b == b'?' || b == b'#')
        .next()
        .unwrap_or(&[]);
    if target.first() != Some(&b'/') {
        return Err(Status::BadRequest);
    }
    let mut decoded = alloc::vec::Vec::with_capacity(target.len());
    let mut i = 0;
    while let Some(&b) = target.get(i) {
        let byte = if b == b'%' {
            let hi = target.get(i + 1).copied().and_then(hex);
            let lo = target.get(i + 2).copied().and_then(hex);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(Status::BadRequest);
            };
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            b
        };
        if byte == 0 || byte == b'\\' || byte.is_ascii_control() {
            return Err(Status::BadRequest);
        }
        decoded.push(byte);
    }
    let decoded = core::str::from_utf8(&decoded).map_err(|_| Status::BadRequest)?;
    let mut path = String::from(root.trim_end_matches('/'));
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(Status::BadRequest),
            s => {
                path.push('/');
                path.push_str(s);
            }
        }
        if path.len() > MAX_PATH {
            return Err(Status::UriTooLong);
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(Mapped {
        path,
        directory: decoded.ends_with('/'),
    })
}

/// The `Content-Type` of a file by its name's extension.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => "",
    };
    let is = |e: &str| ext.eq_ignore_ascii_case(e);
    if is("html") || is("htm") {
        "text/html; charset=utf-8"
    } else if is("txt") {
        "text/plain; charset=utf-8"
    } else if is("css") {
        "text/css; charset=utf-8"
    } else if is("js") {
        "text/javascript; charset=utf-8"
    } else if is("png") {
        "image/png"
    } else {
        "application/octet-stream"
    }
}

/// Writes a response head to `out` (cleared first).
pub fn response_head(
    out: &mut String,
    status: Status,
    content_type: &str,
    length: u64,
    keep_alive: bool,
) {
    out.clear();
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: kaal-httpd\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: {}\r\n",
        status.code(),
        status.reason(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    if status == Status::MethodNotAllowed {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
}

/// The body of an error answer: its status line as text.
pub fn error_body(status: Status) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} {}", status.code(), status.reason());
    s
}

#[cfg(test)]
mod tests;
