//! Portal profiles: how one portal logs people in and out, where its session lives, and which
//! of its other ways of accepting credentials must be refused. One TOML file per portal product,
//! in `config/profiles/`, validated like the main file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diagnostic::{ConfigErrors, Locator};

/// A validated portal profile.
#[derive(Debug, Clone)]
pub struct PortalProfile {
    pub name: String,
    pub source: PathBuf,
    pub login: LoginRule,
    pub logout: Option<LogoutRule>,
    pub block: BlockRule,
    /// How the portal reads a query parameter given twice (PHP: the last).
    pub query_reading: crate::policy::matcher::QueryReading,
    /// Endpoint classes (view, search, list, export, file, admin), first match wins; budgets
    /// and detection count by class.
    pub classes: Vec<EndpointClass>,
    /// Where the portal shows a user's role, read once after each login into groups.
    pub role: Option<RoleRule>,
    /// The script every page goes through (PHP: `/index.php`): `/` and `/index.php/…` run
    /// it too, so rules, classes and logout detection read them as that path.
    pub front_controller: Option<String>,
    /// How detection reads patients, pages and exports (`[[patient]]`, `[paging]`, `[export]`).
    pub reading: crate::detect::reading::Reading,
    /// What reaches the portal before the second factor (`[prelogin]`).
    pub prelogin: crate::identity::prelogin::PreLogin,
    /// How the portal's language reads parameters and bodies, with its limits (`[request]`).
    pub request: crate::http::RequestSpec,
}

impl PortalProfile {
    /// The same profile for a portal that treats `/Admin` as `/admin`: endpoint classes and
    /// patient sources then match paths without case, as rules do.
    pub fn ignoring_path_case(mut self) -> Self {
        use crate::policy::matcher::PathPattern;
        let matchers = self
            .classes
            .iter_mut()
            .map(|c| &mut c.matcher)
            .chain(self.reading.patients.iter_mut().map(|p| &mut p.matcher))
            .chain(self.reading.records.iter_mut().map(|r| &mut r.matcher));
        for matcher in matchers {
            let recompiled = match &matcher.path {
                PathPattern::Any => Ok(PathPattern::Any),
                PathPattern::Glob(src, _) => PathPattern::glob(src, true),
                PathPattern::Regex(src, _) => PathPattern::regex(src, true),
            };
            if let Ok(p) = recompiled {
                matcher.path = p;
            }
        }
        // A source that matches `/API/…` must also find its id there.
        for source in &mut self.reading.patients {
            if let crate::detect::reading::IdFrom::Path(re) = &mut source.from {
                if let Ok(ci) = regex::Regex::new(&format!("(?i){}", re.as_str())) {
                    *re = ci;
                }
            }
        }
        self
    }

    /// `path` as the portal's script sees it (see [`PortalProfile::front_controller`]).
    pub fn script_path<'a>(&'a self, path: &'a str) -> &'a str {
        match &self.front_controller {
            Some(fc)
                if path == "/"
                    || path
                        .strip_prefix(fc.as_str())
                        .is_some_and(|r| r.starts_with('/')) =>
            {
                fc
            }
            _ => path,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RoleRule {
    /// A page of the portal (path and query) that shows the signed-in user's role.
    pub page: String,
    /// Its first capture group is the role.
    pub pattern: regex::Regex,
    /// Role as shown -> group name.
    pub groups: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct EndpointClass {
    pub name: String,
    pub matcher: crate::policy::matcher::Matcher,
}

/// The portal's own login request, which stays the first factor.
#[derive(Debug, Clone)]
pub struct LoginRule {
    pub path: String,
    pub method: String,
    pub username_field: String,
    pub password_field: String,
    /// When set, only a request whose form carries this field is a login attempt
    /// (Mediboard posts many forms to `index.php`; the login one carries `login=1`).
    pub marker_field: Option<String>,
    /// Other fields the login form posts (a CSRF token); any field not named refuses it.
    pub fields: Vec<String>,
    /// Statuses of a successful login.
    pub success_status: Vec<u16>,
    /// A successful login's `Location` matches this (a failed one redirects elsewhere, or
    /// not at all). Success is the portal's answer, not a new cookie: portals that keep their
    /// session id at login answer with none.
    pub success_location: Option<regex::Regex>,
    /// A page showing the signed-in user, read after each login: it must name the user who
    /// typed the password (identity binding, threat model 38).
    pub confirm: Option<ConfirmRule>,
    /// The cookies the portal's session lives in: kept server-side, never given to browsers.
    pub session_cookies: Vec<String>,
    /// The portal treats `Alice` and `alice` as one account (MySQL collations usually do).
    pub case_insensitive_users: bool,
    /// The collation the portal's database compares user names under, when known exactly.
    pub collation: Option<crate::identity::collation::Collation>,
}

#[derive(Debug, Clone)]
pub struct ConfirmRule {
    /// Path and query of the page.
    pub page: String,
    /// Its first capture group is the portal's user name.
    pub pattern: regex::Regex,
}

pub use crate::identity::logout::LogoutRule;

/// Other ways the portal accepts credentials, refused on every request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockRule {
    /// Query parameter names (lower case) that carry credentials or tokens.
    pub query_params: Vec<String>,
    /// Refuse `Authorization: Basic` (and any `Authorization`) from browsers.
    pub authorization_header: bool,
    /// The portal reads cookies into its request variables (PHP `$_REQUEST` with the default
    /// `variables_order`): the same names are refused as cookies.
    pub cookies: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    login: LoginSection,
    logout: Option<crate::identity::logout::Section>,
    #[serde(default)]
    block: BlockSection,
    #[serde(default = "last")]
    query_reading: String,
    #[serde(default)]
    class: Vec<ClassSection>,
    role: Option<RoleSection>,
    front_controller: Option<String>,
    #[serde(default)]
    patient: Vec<crate::detect::reading::PatientSection>,
    #[serde(default)]
    records: Vec<crate::detect::records::RecordsSection>,
    #[serde(default)]
    paging: crate::detect::reading::PagingSection,
    #[serde(default)]
    export: crate::detect::reading::ExportSection,
    prelogin: Option<crate::identity::prelogin::Section>,
    request: Option<crate::http::RequestSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSection {
    page: String,
    pattern: String,
    groups: std::collections::BTreeMap<String, String>,
}

fn last() -> String {
    "last".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassSection {
    name: String,
    path: Option<String>,
    path_regex: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    query: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginSection {
    path: String,
    #[serde(default = "post")]
    method: String,
    username_field: String,
    password_field: String,
    marker_field: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    case_insensitive_users: bool,
    collation: Option<String>,
    success: SuccessSection,
    confirm: Option<ConfirmSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmSection {
    page: String,
    pattern: String,
}

fn post() -> String {
    "POST".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuccessSection {
    #[serde(default = "redirects")]
    status: Vec<i64>,
    location: Option<String>,
    session_cookies: Vec<String>,
}

fn redirects() -> Vec<i64> {
    vec![301, 302, 303]
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct BlockSection {
    query_params: Vec<String>,
    authorization_header: bool,
    cookies: bool,
}

/// The profiles shipped in `config/profiles/`, embedded: `profile = "builtin:NAME"` names one,
/// so the demo and the simulator need no file on disk.
const BUILTIN: &[(&str, &str)] = &[
    (
        "sample-portal",
        include_str!("../../config/profiles/sample-portal.toml"),
    ),
    (
        "mediboard",
        include_str!("../../config/profiles/mediboard.toml"),
    ),
    (
        "openemr",
        include_str!("../../config/profiles/openemr.toml"),
    ),
    (
        "django-admin",
        include_str!("../../config/profiles/django-admin.toml"),
    ),
    (
        "generic-form",
        include_str!("../../config/profiles/generic-form.toml"),
    ),
    (
        "generic-fhir",
        include_str!("../../config/profiles/generic-fhir.toml"),
    ),
];

/// Names of the embedded profiles, for messages.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Load and validate an embedded profile; `None` if there is none of that name.
pub fn load_builtin(name: &str) -> Option<Result<PortalProfile, ConfigErrors>> {
    let (name, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    let path = PathBuf::from(format!("config/profiles/{name}.toml (embedded)"));
    Some(parse(&path, text))
}

/// Load and validate a profile file.
pub fn load(path: &Path) -> Result<PortalProfile, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::unreadable(
            path,
            "portal profile",
            &e,
            "`profile` paths are relative to the main config file's folder",
        )
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<PortalProfile, ConfigErrors> {
    let loc = Locator::new(path, text);
    let f: File =
        toml::from_str(text).map_err(|e| ConfigErrors(vec![loc.parse_error(text, &e)]))?;
    let mut errors = Vec::new();
    let mut err = |key: &str, msg: String, help: &str| {
        errors.push(loc.error(key, msg, Some(help.to_string())))
    };
    for (key, p) in [
        ("login.path", &f.login.path),
        (
            "logout.path",
            &f.logout
                .as_ref()
                .map_or("/".to_string(), |l| l.path.clone()),
        ),
    ] {
        match crate::http::normalise_target(p) {
            Ok(t) if t.path == *p && t.query.is_none() => {}
            _ => err(key, format!("`{p}` is not a canonical path"), "write the path as the portal serves it, starting with `/`, without query, `..` or encoding"),
        }
    }
    let method = f.login.method.to_ascii_uppercase();
    if method != "POST" && method != "GET" {
        err(
            "login.method",
            format!("`{}` is not a login method", f.login.method),
            "use \"POST\" (or \"GET\" for portals that log in by query string)",
        );
    }
    for (key, v) in [
        ("login.username_field", &f.login.username_field),
        ("login.password_field", &f.login.password_field),
    ] {
        if v.is_empty() {
            err(
                key,
                "the field name is empty".into(),
                "name the form field as the portal's login form does",
            );
        }
    }
    let mut success_status = Vec::new();
    for (i, s) in f.login.success.status.iter().enumerate() {
        if (200..400).contains(s) {
            success_status.push(*s as u16);
        } else {
            err(
                &format!("login.success.status[{i}]"),
                format!("{s} is not a success status"),
                "use 2xx or 3xx statuses, e.g. [302]",
            );
        }
    }
    if f.login.success.session_cookies.is_empty() {
        err(
            "login.success.session_cookies",
            "no session cookie named".into(),
            "name the cookie(s) the portal's session lives in, e.g. [\"PHPSESSID\"]",
        );
    }
    for (i, c) in f.login.success.session_cookies.iter().enumerate() {
        if c.is_empty()
            || !c
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            err(
                &format!("login.success.session_cookies[{i}]"),
                format!("`{c}` is not a cookie name"),
                "use the cookie name exactly as the portal sets it",
            );
        }
    }
    let logout = f
        .logout
        .and_then(|l| crate::identity::logout::build(l, &mut |k, m, h| err(k, m, h)));
    let query_reading = match f.query_reading.as_str() {
        "last" => crate::policy::matcher::QueryReading::Last,
        "first" => crate::policy::matcher::QueryReading::First,
        other => {
            err(
                "query_reading",
                format!("unknown `{other}`"),
                "use \"last\" (PHP and most portals) or \"first\" (Java servlets)",
            );
            Default::default()
        }
    };
    let mut classes = Vec::new();
    for (i, c) in f.class.iter().enumerate() {
        let key = format!("class[{i}]");
        if !["view", "search", "list", "export", "file", "admin"].contains(&c.name.as_str()) {
            err(
                &format!("{key}.name"),
                format!("`{}` is not an endpoint class", c.name),
                "use view, search, list, export, file or admin",
            );
        }
        let matcher = crate::config::validate::policy::matcher(
            &key,
            c.path.as_deref(),
            c.path_regex.as_deref(),
            &c.methods,
            &c.query,
            false,
            &mut |k, m, h| err(k, m, h),
        );
        classes.push(EndpointClass {
            name: c.name.clone(),
            matcher,
        });
    }
    let role = match &f.role {
        None => None,
        Some(r) => {
            if !r.page.starts_with('/') {
                err(
                    "role.page",
                    format!("`{}` is not a path", r.page),
                    "e.g. page = \"/index.php\"",
                );
            }
            match regex::Regex::new(&r.pattern) {
                Ok(pattern) if pattern.captures_len() >= 2 => Some(RoleRule {
                    page: r.page.clone(),
                    pattern,
                    groups: r.groups.clone(),
                }),
                Ok(_) => {
                    err(
                        "role.pattern",
                        "the pattern has no capture group".into(),
                        "put the role in parentheses, e.g. \"role: ([^<]+)\"",
                    );
                    None
                }
                Err(e) => {
                    err(
                        "role.pattern",
                        format!("invalid regex: {e}"),
                        "see https://docs.rs/regex for the syntax",
                    );
                    None
                }
            }
        }
    };
    if let Some(fc) = &f.front_controller {
        if !fc.starts_with('/') || fc.ends_with('/') {
            err(
                "front_controller",
                format!("`{fc}` is not a script path"),
                "e.g. front_controller = \"/index.php\"",
            );
        }
    }
    let mut patient_matchers = Vec::new();
    for (i, p) in f.patient.iter().enumerate() {
        let m = crate::config::validate::policy::matcher(
            &format!("patient[{i}]"),
            p.path.as_deref(),
            p.path_regex.as_deref(),
            &p.methods,
            &p.query,
            false,
            &mut |k, m, h| err(k, m, h),
        );
        patient_matchers.push((m, p));
    }
    let mut reading =
        crate::detect::reading::build(patient_matchers, &f.paging, &f.export, &mut |k, m, h| {
            err(k, m, h)
        });
    for (i, r) in f.records.iter().enumerate() {
        let key = format!("records[{i}]");
        let m = crate::config::validate::policy::matcher(
            &key,
            r.path.as_deref(),
            r.path_regex.as_deref(),
            &r.methods,
            &r.query,
            false,
            &mut |k, m, h| err(k, m, h),
        );
        let rule = crate::detect::records::build(i, m, r, &mut |k, m, h| err(k, m, h));
        reading.records.extend(rule);
    }
    let success_location = f.login.success.location.as_deref().and_then(|l| {
        regex::Regex::new(l)
            .map_err(|e| {
                err(
                    "login.success.location",
                    format!("invalid regex: {e}"),
                    "e.g. location = '^/index\\.php\\?m=' (anchored on what a success redirects to)",
                )
            })
            .ok()
    });
    let confirm = f.login.confirm.as_ref().and_then(|c| {
        match regex::Regex::new(&c.pattern) {
            Ok(pattern) if c.page.starts_with('/') && pattern.captures_len() >= 2 => {
                Some(ConfirmRule {
                    page: c.page.clone(),
                    pattern,
                })
            }
            _ => {
                err(
                    "login.confirm",
                    format!("page `{}` or pattern `{}` unusable", c.page, c.pattern),
                    "page is a path (\"/index.php\"); pattern a regex whose first group is the user name",
                );
                None
            }
        }
    });
    let collation = f.login.collation.as_deref().and_then(|name| {
        let c = crate::identity::collation::Collation::parse(name);
        if c.is_none() {
            err(
                "login.collation",
                format!("unknown collation `{name}`"),
                "use the collation of the portal's user table: utf8mb4_general_ci, utf8mb4_general_nopad_ci, utf8mb4_bin or binary",
            );
        }
        c
    });
    let prelogin =
        crate::identity::prelogin::build(f.prelogin.as_ref(), &f.login.path, &mut |k, m, h| {
            err(k, m, h)
        });
    let request = crate::http::build(f.request.as_ref(), query_reading, &mut |k, m, h| {
        err(k, m, h)
    });
    let (false, Some(prelogin)) = (!errors.is_empty(), prelogin) else {
        return Err(ConfigErrors(errors));
    };
    Ok(PortalProfile {
        request,
        prelogin,
        reading,
        front_controller: f.front_controller.clone(),
        role,
        query_reading,
        classes,
        name: f.name,
        source: path.to_path_buf(),
        login: LoginRule {
            path: f.login.path,
            method,
            username_field: f.login.username_field,
            password_field: f.login.password_field,
            marker_field: f.login.marker_field,
            fields: f.login.fields,
            success_status,
            success_location,
            confirm,
            session_cookies: f.login.success.session_cookies,
            case_insensitive_users: f.login.case_insensitive_users,
            collation,
        },
        logout,
        block: BlockRule {
            query_params: f
                .block
                .query_params
                .iter()
                .map(|q| q.to_ascii_lowercase())
                .collect(),
            authorization_header: f.block.authorization_header,
            cookies: f.block.cookies,
        },
    })
}

#[cfg(test)]
mod tests;
