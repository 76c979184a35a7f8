extern crate std;

use std::format;
use std::string::String;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

fn request(head: &str) -> Result<Request<'_>, Refusal> {
    match scan(head.as_bytes()) {
        Scan::Complete(n) => parse(&head.as_bytes()[..n]),
        other => panic!("{head:?} scanned as {other:?}"),
    }
}

fn status(head: &str) -> Status {
    match request(head) {
        Ok(_) => Status::Ok,
        Err(r) => r.status,
    }
}

#[test]
fn heads_end_at_the_empty_line() {
    assert_eq!(scan(b"GET / HTTP/1.1\r\nHost: x\r\n"), Scan::Incomplete);
    assert_eq!(scan(b"GET / HTTP/1.1\r\n\r\nGET"), Scan::Complete(18));
    assert_eq!(scan(b"GET / HTTP/1.1\n\n"), Scan::Complete(16));
    // Empty lines before the request line are no end.
    assert_eq!(scan(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), Scan::Complete(22));
    assert_eq!(scan(b""), Scan::Incomplete);
}

#[test]
fn long_lines_and_heads_are_refused_early() {
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_LINE));
    assert_eq!(
        scan(long_line.as_bytes()),
        Scan::Refused(Status::UriTooLong)
    );
    // Without its end yet: refused as soon as it is too long.
    let open = "a".repeat(MAX_LINE + 1);
    assert_eq!(scan(open.as_bytes()), Scan::Refused(Status::UriTooLong));
    let mut head = String::from("GET / HTTP/1.1\r\n");
    while head.len() < MAX_HEAD {
        head.push_str("X-Filler: 0123456789abcdef\r\n");
    }
    assert_eq!(
        scan(head.as_bytes()),
        Scan::Refused(Status::HeadersTooLarge)
    );
    // Just under the limit is fine.
    let ok = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_LINE - 20));
    assert!(matches!(scan(ok.as_bytes()), Scan::Complete(_)));
}

#[test]
fn methods_versions_and_keep_alive() {
    let r = request("GET /index.html HTTP/1.1\r\nHost: kaal\r\n\r\n").expect("served");
    assert_eq!(
        (r.method, r.target, r.keep_alive, r.body),
        (Method::Get, &b"/index.html"[..], true, 0)
    );
    let r = request("HEAD / HTTP/1.0\r\n\r\n").expect("served");
    assert_eq!((r.method, r.keep_alive), (Method::Head, false));
    let r = request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").expect("served");
    assert!(r.keep_alive);
    let r = request("GET / HTTP/1.1\r\nconnection: foo, close\r\n\r\n").expect("served");
    assert!(!r.keep_alive);
    let post = request("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").expect_err("refused");
    assert_eq!(
        post,
        Refusal {
            status: Status::MethodNotAllowed,
            keep_alive: true,
            body: 5
        }
    );
    assert_eq!(
        status("DELETE /x HTTP/1.1\r\n\r\n"),
        Status::MethodNotAllowed
    );
    assert_eq!(
        status("GET / HTTP/2.0\r\n\r\n"),
        Status::VersionNotSupported
    );
    assert_eq!(
        request("GET / HTTP/1.1\r\nContent-Length: 12\r\n\r\n").map(|r| r.body),
        Ok(12)
    );
}

#[test]
fn malformed_requests_are_400_and_close() {
    for head in [
        "GET /\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 extra\r\n\r\n",
        "G\u{7f}T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET / HTTP/1.1\r\n folded: line\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTPS/1.1\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
    ] {
        let r = request(head).expect_err(head);
        assert_eq!(r.status, Status::BadRequest, "{head:?}");
        assert!(!r.keep_alive, "{head:?}");
    }
    assert_eq!(
        parse(b"\r\n\r\n"),
        Err(Refusal::closing(Status::BadRequest))
    );
    assert_eq!(parse(b""), Err(Refusal::closing(Status::BadRequest)));
}

#[test]
fn targets_map_under_the_root() {
    let map = |t: &str| map_path("/www", t.as_bytes());
    let at = |p: &str, directory| {
        Ok(Mapped {
            path: String::from(p),
            directory,
        })
    };
    assert_eq!(map("/"), at("/www", true));
    assert_eq!(map("/index.html"), at("/www/index.html", false));
    assert_eq!(map("/docs/"), at("/www/docs", true));
    assert_eq!(map("/a//b/./c?x=../../etc#frag"), at("/www/a/b/c", false));
    assert_eq!(map("/hello%20world.txt"), at("/www/hello world.txt", false));
    assert_eq!(map("/%C3%A9t%C3%A9"), at("/www/\u{e9}t\u{e9}", false));
    assert_eq!(map("/a..b/c..."), at("/www/a..b/c...", false));
    assert_eq!(map_path("/", b"/x"), at("/x", false));
}

#[test]
fn targets_cannot_leave_the_root() {
    for t in [
        "/..",
        "/../etc/motd",
        "/a/../../etc",
        "/a/..",
        "/%2e%2e/etc/motd",
        "/%2E%2e/etc",
        "/.%2e/etc",
        "/a%2f..%2f..%2fetc",
        "/a%00b",
        "/a\\..\\etc",
        "/a%5c..%5cetc",
        "/%0d%0aSet-Cookie:x",
        "/%",
        "/%2",
        "/%zz",
        "/%ff%fe",
        "etc/motd",
        "http://evil/etc/motd",
        "",
        "*",
    ] {
        assert!(map_path("/www", t.as_bytes()).is_err(), "{t:?} mapped");
    }
    let long = format!("/{}", "a/".repeat(MAX_PATH));
    assert_eq!(map_path("/www", long.as_bytes()), Err(Status::UriTooLong));
}

#[test]
fn content_types_by_extension() {
    assert_eq!(content_type("/www/index.html"), "text/html; charset=utf-8");
    assert_eq!(content_type("/www/a.HTM"), "text/html; charset=utf-8");
    assert_eq!(content_type("/www/a.txt"), "text/plain; charset=utf-8");
    assert_eq!(content_type("/www/s.css"), "text/css; charset=utf-8");
    assert_eq!(
        content_type("/www/app.js"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(content_type("/www/logo.png"), "image/png");
    assert_eq!(content_type("/www/big.bin"), "application/octet-stream");
    assert_eq!(content_type("/www/README"), "application/octet-stream");
    assert_eq!(content_type("/www/.html"), "application/octet-stream");
    assert_eq!(content_type("/www/d.html/x"), "application/octet-stream");
}

#[test]
fn response_heads_say_length_type_and_connection() {
    let mut out = String::new();
    response_head(&mut out, Status::Ok, "text/plain", 12, true);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nServer: kaal-httpd\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n"
    );
    response_head(&mut out, Status::MethodNotAllowed, "text/plain", 0, false);
    assert!(out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    assert!(out.contains("Allow: GET, HEAD\r\n"));
    assert!(out.contains("Connection: close\r\n"));
    assert!(out.ends_with("\r\n\r\n"));
    assert_eq!(error_body(Status::NotFound), "404 Not Found\n");
}

proptest! {
    #[test]
    fn any_bytes_scan_and_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        match scan(&bytes) {
            Scan::Complete(n) => {
                prop_assert!(n <= bytes.len() && n <= MAX_HEAD);
                let _ = parse(&bytes[..n]);
            }
            Scan::Incomplete => prop_assert!(bytes.len() < MAX_HEAD),
            Scan::Refused(s) => prop_assert!(matches!(s, Status::UriTooLong | Status::HeadersTooLarge)),
        }
        let _ = parse(&bytes);
    }

    #[test]
    fn mapped_paths_stay_under_the_root(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(String::from("..")),
                Just(String::from(".")),
                Just(String::from("%2e%2e")),
                Just(String::from("%2E.")),
                Just(String::from("%2f")),
                Just(String::from("%5c")),
                Just(String::from("%00")),
                Just(String::from("")),
                "[a-z.%0-9A-F\\\\]{0,6}",
            ],
            0..8,
        )
    ) {
        let target = format!("/{}", parts.join("/"));
        if let Ok(m) = map_path("/www", target.as_bytes()) {
            prop_assert!(m.path == "/www" || m.path.starts_with("/www/"), "{target} -> {}", m.path);
            let segments: Vec<&str> = m.path.split('/').collect();
            prop_assert!(!segments.contains(&".."), "{target} -> {}", m.path);
            prop_assert!(!m.path.contains('\0') && !m.path.contains('\\'));
        }
    }

    #[test]
    fn well_formed_get_requests_parse(
        path in "/[a-z0-9/._-]{0,40}",
        headers in proptest::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,30}"), 0..6),
    ) {
        let mut head = format!("GET {path} HTTP/1.1\r\n");
        for (n, v) in &headers {
            if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding") {
                continue;
            }
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        prop_assume!(head.len() < MAX_HEAD);
        prop_assert_eq!(scan(head.as_bytes()), Scan::Complete(head.len()));
        let r = parse(head.as_bytes());
        prop_assert!(r.is_ok(), "{:?}: {:?}", head, r);
    }
}
