//! The parameters a profiled portal's script sees, as the one reader ([`crate::http`]) reads
//! them: which names the gateway keeps, and the view the detector's matchers read.

use crate::config::PortalProfile;

/// The names the profile reads from parameters: patient ids, paging, the query conditions
/// of its endpoint classes and patient sources, and the login form's fields.
pub fn wanted(profile: &PortalProfile) -> crate::http::Wanted {
    use crate::detect::reading::IdFrom;
    let r = &profile.reading;
    let conditions = profile
        .classes
        .iter()
        .map(|c| &c.matcher)
        .chain(r.patients.iter().map(|p| &p.matcher))
        .flat_map(|m| m.query.iter().map(|q| q.name.as_str()));
    let ids = r.patients.iter().filter_map(|p| match &p.from {
        IdFrom::Param(name) => Some(name.as_str()),
        _ => None,
    });
    let paging = [&r.paging.offset, &r.paging.page, &r.paging.size]
        .into_iter()
        .flatten()
        .map(String::as_str);
    let login = &profile.login;
    let fields = [&login.username_field, &login.password_field]
        .into_iter()
        .chain(login.marker_field.as_ref())
        .map(String::as_str);
    crate::http::Wanted::names(conditions.chain(ids).chain(paging).chain(fields))
}

/// The parameters the portal's script sees (`$_REQUEST` for PHP: the query, then the form
/// or multipart body), as a query of folded names for the profile's matchers; and a JSON
/// body, parsed. Only the names the profile reads are there.
pub fn portal_params(
    profile: &PortalProfile,
    query: Option<&str>,
    body: Option<&crate::http::BodyReader>,
) -> (String, Option<serde_json::Value>) {
    let spec = &profile.request;
    let wanted = wanted(profile);
    let get = crate::http::read_query(spec, query.unwrap_or("").as_bytes(), &wanted);
    let post = body.map(|b| b.post().clone()).unwrap_or_default();
    let mut merged = crate::http::merge_request(spec, &get, &post, &Default::default());
    // The password is read for its presence only; it goes no further.
    merged.map.remove(profile.login.password_field.as_bytes());
    let json = body
        .and_then(|b| b.json())
        .and_then(|j| serde_json::from_slice(j).ok());
    (merged.to_query(), json)
}
