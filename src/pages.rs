//! Pages the gateway renders itself. Static text only, bilingual (French first: the portals
//! Vigie protects are French hospitals'), no external assets, one same-origin stylesheet.

/// Content-Security-Policy for every gateway page.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the stylesheet is served; the `/.vigie/` prefix belongs to the gateway, never the portal.
pub const STYLESHEET_PATH: &str = "/.vigie/vigie.css";

pub const STYLESHEET: &str = "\
:root{color-scheme:light;--ink:#1b2a3a;--muted:#4a5d70;--accent:#0b5cad;--bg:#f3f6f9}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:var(--bg);color:var(--ink)}\
main{max-width:34rem;margin:10vh auto;padding:2rem;background:#fff;border-radius:10px;box-shadow:0 2px 10px rgba(0,0,0,.08)}\
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.05rem;color:var(--muted);font-weight:500;margin:0 0 1rem}\
p{margin:.5rem 0}.ref{margin-top:1.5rem;font-size:.85rem;color:var(--muted)}\
.brand{font-weight:700;letter-spacing:.04em;color:var(--accent);margin-bottom:1rem}\
a{color:var(--accent)}.error{color:#a01818;font-weight:600}\
input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}button{font:inherit;padding:.5rem 1.2rem;background:var(--accent);color:#fff;border:0;border-radius:6px}\
";

/// Title and explanation, in French then English, for a status the gateway answers itself.
fn wording(status: u16) -> (&'static str, &'static str, &'static str, &'static str) {
    match status {
        400 => ("Requête invalide", "Bad request", "Le navigateur a envoyé une requête que la passerelle ne peut pas interpréter sans ambiguïté.", "The browser sent a request the gateway cannot read unambiguously."),
        404 => ("Portail inconnu", "Unknown portal", "Aucun portail n'est servi à cette adresse.", "No portal is served at this address."),
        405 => ("Méthode refusée", "Method not allowed", "Cette méthode HTTP n'est pas acceptée.", "This HTTP method is not accepted."),
        408 => ("Délai dépassé", "Request timeout", "La requête est arrivée trop lentement.", "The request arrived too slowly."),
        413 => ("Envoi trop volumineux", "Upload too large", "Le contenu envoyé dépasse la taille autorisée.", "The content sent is larger than allowed."),
        414 => ("Adresse trop longue", "URL too long", "L'adresse demandée est trop longue.", "The requested address is too long."),
        431 => ("En-têtes trop volumineux", "Headers too large", "La requête contient trop d'en-têtes ou des en-têtes trop longs.", "The request has too many or too large headers."),
        503 => ("Connexion momentanément impossible", "Sign-in temporarily unavailable", "Le service de sessions de la passerelle ne répond pas ; par sécurité, aucun accès n'est ouvert. Réessayez dans une minute.", "The gateway's session service is not answering; for safety no access is granted. Try again in a minute."),
        403 => ("Accès refusé", "Access refused", "Cette requête n'est pas autorisée par la passerelle.", "The gateway does not allow this request."),
        423 => ("Compte verrouillé", "Account locked", "Ce compte est verrouillé. Contactez le service informatique, qui vérifiera votre identité en personne.", "This account is locked. Contact IT support, who will check your identity in person."),
        401 => ("Connexion requise", "Sign-in required", "Connectez-vous pour accéder au portail.", "Sign in to use the portal."),
        502 => ("Portail indisponible", "Portal unavailable", "Le portail ne répond pas. Réessayez dans une minute ; si cela persiste, contactez le service informatique.", "The portal is not answering. Try again in a minute; if it persists, contact IT support."),
        504 => ("Portail trop lent", "Portal timeout", "Le portail n'a pas répondu à temps. Réessayez ; si cela persiste, contactez le service informatique.", "The portal did not answer in time. Try again; if it persists, contact IT support."),
        _ => ("Erreur", "Error", "La passerelle n'a pas pu traiter la requête.", "The gateway could not handle the request."),
    }
}

/// A complete HTML error page. `request_id` is gateway-generated hex, safe to embed.
pub fn error_page(status: u16, request_id: &str) -> String {
    let (fr_title, en_title, fr_text, en_text) = wording(status);
    debug_assert!(request_id.bytes().all(|b| b.is_ascii_hexdigit()));
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{status} · {fr_title}</title><link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\"></head>\
<body><main role=\"main\"><div class=\"brand\">Vigie</div>\
<h1>{fr_title}</h1><p>{fr_text}</p>\
<h2 lang=\"en\">{en_title}</h2><p lang=\"en\">{en_text}</p>\
<p class=\"ref\">Code {status} · Référence / Reference : {request_id}</p></main></body></html>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The gateway's own login page (for portals with gateway-owned logins). `failed` shows one
/// message for every failure, so unknown users and wrong passwords look the same.
pub fn login_page(failed: Option<()>, return_to: &str) -> String {
    let error = if failed.is_some() {
        "<p class=\"error\" role=\"alert\">Identifiant ou mot de passe incorrect. <span lang=\"en\">Wrong user name or password.</span></p>"
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Connexion · Vigie</title><link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\"></head>\
<body><main role=\"main\"><div class=\"brand\">Vigie</div><h1>Connexion</h1><h2 lang=\"en\">Sign in</h2>{error}\
<form method=\"post\" action=\"/.vigie/login\"><input type=\"hidden\" name=\"return\" value=\"{}\">\
<p><label for=\"u\">Identifiant <span lang=\"en\">/ User name</span></label><br><input id=\"u\" name=\"username\" autocomplete=\"username\" required autofocus></p>\
<p><label for=\"p\">Mot de passe <span lang=\"en\">/ Password</span></label><br><input id=\"p\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
<p><button type=\"submit\">Se connecter / Sign in</button></p></form></main></body></html>",
        escape(return_to)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_page_is_bilingual_and_carries_reference() {
        let page = error_page(502, "00ab");
        assert!(page.contains("Portail indisponible") && page.contains("Portal unavailable"));
        assert!(page.contains("00ab"));
        assert!(!page.contains("<script"));
    }
}
