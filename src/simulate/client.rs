//! A simulated browser (or script): keep-alive HTTP over loopback to the gateway, the
//! cookies it is given, and its workstation's address in `X-Forwarded-For` (the simulator's
//! gateway trusts loopback as a proxy, so each actor gets its own source address).

use std::collections::BTreeMap;
use std::io::Read;

pub struct Client {
    agent: ureq::Agent,
    base: String,
    pub ip: String,
    pub user_agent: String,
    cookies: BTreeMap<String, String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub const BROWSER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

impl Client {
    pub fn new(port: u16, ip: &str, user_agent: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        Self {
            agent,
            base: format!("http://127.0.0.1:{port}"),
            ip: ip.to_string(),
            user_agent: user_agent.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, reply: &Reply) {
        for (name, value) in &reply.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = value.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                let gone = v.is_empty() || value.to_ascii_lowercase().contains("max-age=0");
                match gone {
                    true => self.cookies.remove(k.trim()),
                    false => self.cookies.insert(k.trim().to_string(), v.to_string()),
                };
            }
        }
    }

    fn finish(&mut self, result: Result<http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let reply = match result {
            Ok(mut r) => {
                let headers = r
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let mut body = String::new();
                // A cut export ends early: keep what arrived.
                let _ = r.body_mut().as_reader().read_to_string(&mut body);
                Reply {
                    status: r.status().as_u16(),
                    headers,
                    body,
                }
            }
            Err(e) => Reply {
                status: 0,
                headers: Vec::new(),
                body: e.to_string(),
            },
        };
        self.keep(&reply);
        reply
    }

    pub fn get(&mut self, path: &str) -> Reply {
        let request = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("user-agent", &self.user_agent)
            .header("x-forwarded-for", &self.ip)
            .header("cookie", self.cookie_header());
        let result = request.call();
        self.finish(result)
    }

    fn post_form(&mut self, path: &str, form: &str) -> Reply {
        let request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("user-agent", &self.user_agent)
            .header("x-forwarded-for", &self.ip)
            .header("cookie", self.cookie_header())
            .content_type("application/x-www-form-urlencoded");
        let result = request.send(form);
        self.finish(result)
    }

    /// The portal's own login form, through the gateway; true once signed in.
    pub fn login(&mut self, user: &str, password: &str) -> bool {
        self.cookies.clear();
        let page = self.get("/index.php");
        let Some(token) = page
            .body
            .split("name=\"csrf_token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string)
        else {
            return false;
        };
        let form = format!("login=1&csrf_token={token}&username={user}&password={password}");
        let reply = self.post_form("/index.php", &form);
        reply.status == 302 && self.cookies.contains_key("vigie")
    }
}
