//! A tiny HTTP/1.1 client for the tests (keep-alive, Content-Length and chunked bodies).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One connection that can carry several requests.
pub struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    pub fn open(addr: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
        Ok(Conn { reader: BufReader::new(s), host: addr.to_string() })
    }

    pub fn get(&mut self, path: &str, extra: &[(&str, &str)]) -> std::io::Result<Response> {
        self.request("GET", path, extra, "")
    }

    /// A form POST (`application/x-www-form-urlencoded`; `body` is already encoded).
    pub fn post_form(&mut self, path: &str, extra: &[(&str, &str)], body: &str) -> std::io::Result<Response> {
        let mut headers = extra.to_vec();
        headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        self.request("POST", path, &headers, body)
    }

    fn request(&mut self, method: &str, path: &str, extra: &[(&str, &str)], body: &str) -> std::io::Result<Response> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method != "GET" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.reader.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("chunk size {line:?}"))
                })?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(len, 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok(Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }
}

/// One GET on a fresh connection. `url` is `http://host:port/path`.
pub fn get(url: &str) -> Response {
    get_with(url, &[])
}

pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Response {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    Conn::open(addr).and_then(|mut c| c.get(path, headers)).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}
