//! The sample portal's HTML, deliberately plain, like the legacy portals it stands in for.

use super::data::{Patient, Role};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The logout link of signed-in pages (a form in strict logout mode).
pub const LOGOUT_LINK: &str = "<a href=\"/index.php?logout=-1\">Déconnexion</a>";

fn layout(title: &str, user: Option<(&str, Role)>, body: &str) -> String {
    let who = match user {
        Some((name, role)) => format!(
            "<div class=\"who\">{} ({}) · {LOGOUT_LINK}</div>",
            escape(name),
            role.label()
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{} — Portail patient (démo)</title>\
<link rel=\"stylesheet\" href=\"/style.css\"></head><body><header><b>Portail patient</b> <i>(démo Vigie — données fictives)</i>{who}</header>\
<main>{body}</main></body></html>",
        escape(title)
    )
}

pub fn login(csrf: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    });
    layout(
        "Connexion",
        None,
        &format!(
            "<h1>Connexion</h1>{error}<form method=\"post\" action=\"/index.php\">\
<input type=\"hidden\" name=\"login\" value=\"1\"><input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
<label>Identifiant <input name=\"username\" autocomplete=\"username\" required></label>\
<label>Mot de passe <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\">Se connecter</button></form>"
        ),
    )
}

pub fn patient(user: (&str, Role), p: &Patient) -> String {
    layout(
        &format!("{} {}", p.nom, p.prenom),
        Some(user),
        &format!(
            "<h1 id=\"patient\" data-patient-id=\"{id}\">{nom} {prenom}</h1><dl>\
<dt>IPP</dt><dd>{ipp}</dd><dt>Né(e) le</dt><dd>{naissance}</dd><dt>Sexe</dt><dd>{sexe}</dd>\
<dt>Service</dt><dd>{service}</dd><dt>Motif</dt><dd>{motif}</dd><dt>Médecin</dt><dd>{medecin}</dd></dl>\
<p><a href=\"/index.php?m=dPpatients&amp;tab=vw_idx_patients\">Retour à la liste</a></p>",
            id = p.id,
            nom = escape(&p.nom),
            prenom = escape(&p.prenom),
            ipp = p.ipp,
            naissance = p.naissance,
            sexe = p.sexe,
            service = p.service,
            motif = p.motif,
            medecin = p.medecin,
        ),
    )
}

pub fn patient_list(
    user: (&str, Role),
    patients: &[&Patient],
    query: &str,
    page: usize,
    has_next: bool,
) -> String {
    let rows: String = patients
        .iter()
        .map(|p| {
            format!(
                "<tr><td><a href=\"/index.php?m=dPpatients&amp;tab=vw_full_patients&amp;patient_id={}\">{} {}</a></td><td>{}</td><td>{}</td></tr>",
                p.id,
                escape(&p.nom),
                escape(&p.prenom),
                p.naissance,
                p.service
            )
        })
        .collect();
    let next = if has_next {
        format!(
            "<a href=\"/index.php?m=dPpatients&amp;tab=vw_idx_patients&amp;q={}&amp;page={}\">Page suivante</a>",
            escape(query),
            page + 1
        )
    } else {
        String::new()
    };
    layout(
        "Patients",
        Some(user),
        &format!(
            "<h1>Patients</h1><form method=\"get\" action=\"/index.php\"><input type=\"hidden\" name=\"m\" value=\"dPpatients\">\
<input type=\"hidden\" name=\"tab\" value=\"vw_idx_patients\"><label>Nom <input name=\"q\" value=\"{}\"></label> <button>Rechercher</button></form>\
<table><thead><tr><th>Patient</th><th>Naissance</th><th>Service</th></tr></thead><tbody>{rows}</tbody></table>{next}",
            escape(query)
        ),
    )
}

pub fn message(title: &str, user: Option<(&str, Role)>, text: &str) -> String {
    layout(
        title,
        user,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text)),
    )
}

pub const STYLE: &str = "body{font-family:sans-serif;margin:0;background:#eef}header{background:#335;color:#fff;padding:.5em 1em}\
header .who{float:right}header a{color:#fff}main{padding:1em 2em}label{display:block;margin:.5em 0}.error{color:#a00}\
table{border-collapse:collapse}td,th{border:1px solid #99a;padding:.2em .6em}dt{font-weight:bold}";
