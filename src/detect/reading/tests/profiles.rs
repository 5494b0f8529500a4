//! Each shipped profile (sample portal, Mediboard, OpenEMR, generic FHIR) read through
//! `Reading::read_request` as the pipeline reads a request.

use super::*;

// ---- the sample portal ----

#[test]
fn sample_portal_record_pages() {
    let p = shipped("sample-portal.toml");
    let (class, r) = get(
        &p,
        "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=1234",
    );
    assert_eq!(class, "view");
    assert_eq!(r.patient.as_deref(), Some("1234"));
    assert!(!r.current);
    assert_eq!(r.page, None);
    // HEAD reads the same record.
    let head = read(
        &p,
        "HEAD",
        "/index.php?tab=vw_full_patients&patient_id=1234",
        None,
        None,
    );
    assert_eq!(head.1.patient.as_deref(), Some("1234"));
    // Without an id, the session's current patient.
    assert_eq!(
        get(&p, "/index.php?m=dPpatients&tab=vw_full_patients").1,
        current()
    );
    // `/` and `/index.php/…` run index.php.
    assert_eq!(
        patient(&p, "/?tab=vw_full_patients&patient_id=6").as_deref(),
        Some("6")
    );
    assert_eq!(
        patient(&p, "/index.php/x/y?tab=vw_full_patients&patient_id=7").as_deref(),
        Some("7")
    );
    // The last `tab` decides, as the portal reads it.
    assert_eq!(
        patient(
            &p,
            "/index.php?tab=vw_idx_patients&tab=vw_full_patients&patient_id=3"
        )
        .as_deref(),
        Some("3")
    );
    let (class, r) = get(
        &p,
        "/index.php?tab=vw_full_patients&tab=vw_idx_patients&patient_id=3",
    );
    assert_eq!((class.as_str(), r.patient), ("search", None));
    // A record page carrying `page=` is still a record page.
    assert_eq!(
        class_of_target(&p, "/index.php?tab=vw_full_patients&patient_id=3&page=2"),
        "view"
    );
}

fn class_of_target(p: &PortalProfile, target: &str) -> String {
    class_for(p, "GET", target)
}

#[test]
fn sample_portal_api() {
    let p = shipped("sample-portal.toml");
    let (class, r) = get(&p, "/api/dossierpatient/patients/293");
    assert_eq!(class, "view", "one record is not a listing page");
    assert_eq!(r.patient.as_deref(), Some("293"));
    assert_eq!(r.page, None);
    // The portal parses the id as a number: `+7` and `007` are patient 7.
    for path in [
        "/api/dossierpatient/patients/+7",
        "/api/dossierpatient/patients/007",
    ] {
        assert_eq!(patient(&p, path).as_deref(), Some("7"), "{path}");
    }
    assert_eq!(
        patient(&p, "/api/dossierpatient/patients/0").as_deref(),
        Some("0")
    );
    assert_eq!(patient(&p, "/api/dossierpatient/patients/abc"), None);
    // The listing: offset and limit.
    let (class, r) = get(&p, "/api/dossierpatient/patients?offset=100&limit=50");
    assert_eq!(class, "list");
    assert_eq!(r.patient, None);
    assert_eq!(r.page, page(100, 50, true));
    assert_eq!(
        get(&p, "/api/dossierpatient/patients").1.page,
        page(0, 50, false)
    );
    let (class, r) = get(&p, "/api/dossierpatient/patients/?offset=0&limit=10000");
    assert_eq!(class, "list", "trailing slash: still the listing");
    assert_eq!(r.page, page(0, 10_000, true));
    assert!(r.page.unwrap().size > p.reading.paging.normal_max);
    assert_eq!(p.reading.paging.records, vec!["list".to_string()]);
}

#[test]
fn sample_portal_ui_list() {
    let p = shipped("sample-portal.toml");
    let (class, r) = get(
        &p,
        "/index.php?m=dPpatients&tab=vw_idx_patients&q=DUP&page=3",
    );
    assert_eq!(class, "search");
    assert_eq!(r.page, page(150, 50, false), "page × 50");
    assert_eq!(r.patient, None);
    // Without `tab` the portal shows the list too.
    assert_eq!(
        get(&p, "/index.php?page=2"),
        (
            "search".into(),
            RequestReading {
                page: page(100, 50, false),
                ..Default::default()
            }
        )
    );
    assert_eq!(get(&p, "/index.php?q=MAR").1.page, page(0, 50, false));
    assert!(p.reading.paging.normal_max >= 50, "the portal's own page");
}

#[test]
fn sample_portal_export_and_assets() {
    let p = shipped("sample-portal.toml");
    let (class, r) = get(&p, "/index.php?m=dPpatients&raw=ajax_export_patients_csv");
    assert_eq!(class, "export");
    assert_eq!(r, RequestReading::default());
    assert_eq!(
        class_of_target(&p, "/index.php?raw=view&raw=ajax_export_patients_csv"),
        "export"
    );
    let r = &p.reading;
    let (ct, cd) = (
        Some("text/csv; charset=utf-8"),
        Some("attachment; filename=\"patients.csv\""),
    );
    assert!(r.is_export(ct, cd));
    assert!(r.is_export(ct, None));
    assert!(r.counts_rows(ct));
    assert!(!r.is_export(Some("text/html; charset=utf-8"), None));
    assert!(!r.is_export(Some("application/json"), None));
    assert_eq!(class_of_target(&p, "/static/bench-1k.txt"), "file");
    assert_eq!(class_of_target(&p, "/style.css"), "file");
    assert_eq!(class_of_target(&p, "/status"), "view");
}

// ---- Mediboard ----

#[test]
fn mediboard_record_routes() {
    let p = shipped("mediboard.toml");
    for target in [
        "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=42",
        "/index.php?m=patients&tab=vw_full_patients&patient_id=42",
        "/?m=dPpatients&tab=vw_full_patients&patient_id=42",
        "/index.php?m=dPpatients&a=vw_full_patients&dialog=1&patient_id=42",
        "/index.php?m=dPpatients&a=print_patient&dialog=1&patient_id=42",
        "/index.php?m=dPcabinet&tab=edit_planning&pat_id=42",
        "/index.php?m=dPplanningOp&tab=vw_edit_planning&pat_id=42",
    ] {
        let (class, r) = get(&p, target);
        assert_eq!(class, "view", "{target}");
        assert_eq!(r.patient.as_deref(), Some("42"), "{target}");
        assert!(!r.current);
    }
    // Screens that fall back to the session's current patient.
    for target in [
        "/index.php?m=dPpatients&tab=vw_full_patients",
        "/index.php?m=patients&tab=vw_full_patients",
        "/index.php?m=dPpatients&a=httpreq_vw_patient",
        "/index.php?m=dPpatients&a=httpreq_vw_full_patient&ajax=1",
        "/index.php?m=dPpatients&tab=vw_edit_patients",
    ] {
        assert_eq!(get(&p, target).1, current(), "{target}");
    }
    // Other screens name no patient.
    for target in [
        "/index.php?m=dPcabinet&tab=edit_consultation&selConsult=5",
        "/index.php?m=dPhospi&tab=vw_affectations",
        "/index.php?m=dPplanningOp&tab=vw_full_patients",
    ] {
        assert_eq!(get(&p, target).1, RequestReading::default(), "{target}");
    }
}

#[test]
fn mediboard_rest_and_fhir_routes() {
    let p = shipped("mediboard.toml");
    for target in [
        "/api/dossierpatient/patients/42",
        "/api/dossierpatient/patient/42",
        "/api/fhir/Patient/42",
        "/api/fhir/Patient/42/_history/3",
        "/api/fhir/Patient/42/Observation",
    ] {
        let (class, r) = get(&p, target);
        assert_eq!(class, "view", "{target}");
        assert_eq!(r.patient.as_deref(), Some("42"), "{target}");
    }
    for target in [
        "/api/fhir/Observation?patient=42&_count=20",
        "/api/fhir/Observation?subject=Patient/42",
        "/api/fhir/Encounter?subject=Patient%2F42",
    ] {
        let (class, r) = get(&p, target);
        assert_eq!(class, "list", "{target}");
        assert_eq!(r.patient.as_deref(), Some("42"), "{target}");
    }
    let (class, r) = get(&p, "/api/fhir/Patient?_count=500&_offset=1000");
    assert_eq!(class, "list");
    assert_eq!(r.page, page(1000, 500, true));
    assert!(r.page.unwrap().size > p.reading.paging.normal_max);
    let (class, r) = get(&p, "/api/dossierpatient/patients?start=60&limit=30");
    assert_eq!((class.as_str(), r.page), ("list", page(60, 30, true)));
}

#[test]
fn mediboard_reads_ids_as_php_does() {
    let p = shipped("mediboard.toml");
    let id = |q: &str| {
        patient(
            &p,
            &format!("/index.php?m=dPpatients&tab=vw_full_patients&{q}"),
        )
    };
    for (q, want) in [
        ("patient_id=1&patient_id=2", "2"),
        ("patient.id=43", "43"),
        ("patient+id=44", "44"),
        ("patient%2Eid=45", "45"),
        ("patient_id=%34%36", "46"),
        ("patient_id=+47", "47"),
        ("patient_id=48&patient.id=49", "49"),
        // MySQL reads `17/0` as 17: counted whole, never as patient 0.
        ("patient_id=17/0", "17/0"),
        ("patient_id=17%2F0", "17/0"),
    ] {
        assert_eq!(id(q).as_deref(), Some(want), "{q}");
    }
    // Zero padding past 64 characters is still a patient for MySQL.
    let padded = format!("{}50", "0".repeat(80));
    assert_eq!(id(&format!("patient_id={padded}")), Some(padded));
    // An array is not `patient_id`: the current patient shows.
    assert_eq!(
        get(
            &p,
            "/index.php?m=dPpatients&tab=vw_full_patients&patient_id[]=5"
        )
        .1,
        current()
    );
    // POSTed forms carry it in the body.
    let (_, r) = read(
        &p,
        "POST",
        "/index.php",
        Some("m=dPpatients&dosql=do_patients_aed&patient_id=51"),
        None,
    );
    assert_eq!(r.patient.as_deref(), Some("51"));
}

#[test]
fn mediboard_objects_exports_and_files() {
    let p = shipped("mediboard.toml");
    let (class, r) = get(
        &p,
        "/index.php?m=system&a=export_object&object_guid=CPatient-52",
    );
    assert_eq!(class, "export");
    assert_eq!(r.patient.as_deref(), Some("CPatient-52"));
    assert_eq!(
        patient(
            &p,
            "/index.php?m=system&a=export_object&object_guid=CSejour-52"
        ),
        None
    );
    let (class, r) = get(
        &p,
        "/index.php?m=dPpatients&a=ajax_export_vcard&suppressHeaders=1&patient_id=53",
    );
    assert_eq!(
        (class.as_str(), r.patient.as_deref()),
        ("export", Some("53"))
    );
    assert_eq!(
        class_of_target(&p, "/index.php?m=dPpatients&raw=export_patients"),
        "export"
    );
    assert_eq!(
        class_of_target(&p, "/index.php?m=dPfiles&a=fileviewer&file_id=1"),
        "file"
    );
    assert_eq!(
        class_of_target(&p, "/index.php?m=files&a=preview_files"),
        "file"
    );
    assert_eq!(class_of_target(&p, "/api/patients"), "list");
    let r = &p.reading;
    // CCSVFile: text/plain with an attachment; vCards; application/csv.
    assert!(r.is_export(
        Some("text/plain;charset=UTF-8"),
        Some("attachment;filename=\"export.csv\"")
    ));
    assert!(!r.counts_rows(Some("text/plain;charset=UTF-8")));
    assert!(r.is_export(Some("text/x-vcard; charset=UTF-8"), None));
    assert!(r.is_export(Some("application/csv"), None));
    assert!(r.counts_rows(Some("application/csv")));
    assert!(r.is_export(Some("application/pdf"), None));
    assert!(!r.is_export(Some("text/html;charset=UTF-8"), None));
}

#[test]
fn mediboard_searches_page_by_row_offset() {
    let p = shipped("mediboard.toml");
    let (class, r) = get(&p, "/index.php?m=dPpatients&tab=vw_idx_patients&nom=DUP");
    assert_eq!(class, "search");
    assert_eq!(r.page, page(0, 30, false));
    let (class, r) = get(
        &p,
        "/index.php?m=dPpatients&a=ajax_recherche_dossier_clinique&start=60",
    );
    assert_eq!(class, "search");
    assert_eq!(r.page, page(60, 30, false));
    // `page` is a row offset in Mediboard (inc_pagination), not a page number.
    assert_eq!(
        get(
            &p,
            "/index.php?m=dPpatients&a=httpreq_list_patients&page=90"
        )
        .1
        .page,
        page(90, 30, false)
    );
    assert_eq!(
        get(
            &p,
            "/index.php?m=dPpatients&a=ajax_search_patient&limit=5000"
        )
        .1
        .page,
        page(0, 5000, true)
    );
    assert_eq!(
        get(
            &p,
            "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=1&start=30"
        )
        .1
        .page,
        None,
        "a record page is not paged"
    );
}

// ---- OpenEMR ----

#[test]
fn openemr_login_and_session() {
    let p = shipped("openemr.toml");
    assert_eq!(p.login.path, "/interface/main/main_screen.php");
    assert_eq!(
        (
            p.login.username_field.as_str(),
            p.login.password_field.as_str()
        ),
        ("authUser", "clearPass")
    );
    assert_eq!(
        p.login.marker_field.as_deref(),
        Some("new_login_session_management")
    );
    assert_eq!(p.login.session_cookies, vec!["OpenEMR".to_string()]);
    assert_eq!(p.logout.as_ref().unwrap().path, "/interface/logout.php");
    assert!(p.block.authorization_header);
}

#[test]
fn openemr_ui_patients() {
    let p = shipped("openemr.toml");
    let demo = "/interface/patient_file/summary/demographics.php";
    assert_eq!(
        patient(&p, &format!("{demo}?set_pid=7")).as_deref(),
        Some("7")
    );
    assert_eq!(
        patient(&p, &format!("{demo}?set_pid=3&set_pid=4")).as_deref(),
        Some("4")
    );
    assert_eq!(
        patient(&p, &format!("{demo}?pid=1&set_pid=2")).as_deref(),
        Some("2"),
        "set_pid makes the patient current"
    );
    assert_eq!(get(&p, demo).1, current());
    assert_eq!(get(&p, &format!("{demo}?set_pid=")).1, current());
    assert_eq!(
        get(
            &p,
            "/interface/patient_file/summary/stats_full.php?active=all"
        )
        .1,
        current()
    );
    assert_eq!(
        patient(&p, "/interface/main/calendar/index.php?pid=8").as_deref(),
        Some("8")
    );
    assert_eq!(
        patient(&p, "/interface/patient_file/encounter/forms.php?pid=9").as_deref(),
        Some("9")
    );
    assert_eq!(
        get(&p, "/interface/main/tabs/main.php?token_main=x").1,
        RequestReading::default()
    );
    let (class, r) = get(
        &p,
        "/controller.php?document&retrieve&patient_id=12&document_id=34&as_file=false",
    );
    assert_eq!((class.as_str(), r.patient.as_deref()), ("file", Some("12")));
}

#[test]
fn openemr_api_patients() {
    let p = shipped("openemr.toml");
    let uuid = "90cde167-7b9b-4ed1-bd55-533925cb2605";
    for target in [
        format!("/apis/default/api/patient/{uuid}"),
        format!("/apis/default/api/patient/{uuid}/encounter"),
        format!("/apis/default/fhir/Patient/{uuid}"),
        format!("/apis/default/fhir/Patient?_id={uuid}"),
        format!("/apis/default/fhir/Observation?patient={uuid}"),
        format!("/apis/default/fhir/Observation?patient=Patient/{uuid}"),
        format!("/apis/default/fhir/DocumentReference?subject=Patient/{uuid}"),
        format!("/apis/clinic2/fhir/Condition?subject=https://ehr.example/apis/clinic2/fhir/Patient/{uuid}"),
    ] {
        assert_eq!(patient(&p, &target).as_deref(), Some(uuid), "{target}");
    }
    assert_eq!(
        patient(&p, "/apis/default/fhir/Observation?subject=Group/1"),
        None
    );
    let (class, r) = read(
        &p,
        "POST",
        "/apis/default/fhir/Patient/_search",
        Some(&format!("_id={uuid}")),
        None,
    );
    assert_eq!((class.as_str(), r.patient.as_deref()), ("list", Some(uuid)));
    assert_eq!(
        class_of_target(&p, &format!("/apis/default/fhir/Patient/{uuid}")),
        "view"
    );
}

#[test]
fn openemr_listings_and_exports() {
    let p = shipped("openemr.toml");
    let (class, r) = get(&p, "/apis/default/api/patient?_offset=200&_limit=50");
    assert_eq!(class, "list");
    assert_eq!(r.page, page(200, 50, true));
    // `_maxresults` is read before `_limit`; a decoy `_count` hides neither.
    assert_eq!(
        get(&p, "/apis/default/api/patient?_count=1&_maxresults=200")
            .1
            .page,
        page(0, 200, true)
    );
    let (class, r) = get(&p, "/apis/default/fhir/Patient?_count=100000&_offset=0");
    assert_eq!(class, "list");
    assert_eq!(r.page, page(0, 100_000, true));
    assert!(r.page.unwrap().size > p.reading.paging.normal_max);
    assert_eq!(
        get(&p, "/apis/default/fhir/Patient?_count=99999999999999999999")
            .1
            .page,
        page(0, u32::MAX, true)
    );
    // The finder (DataTables): `-1` asks for every row.
    let finder = "/interface/main/finder/dynamic_finder_ajax.php";
    let (class, r) = get(
        &p,
        &format!("{finder}?sEcho=2&iDisplayStart=100&iDisplayLength=25&sColumns=name,DOB"),
    );
    assert_eq!(class, "search");
    assert_eq!(r.page, page(100, 25, true));
    assert_eq!(
        get(&p, &format!("{finder}?iDisplayStart=0&iDisplayLength=-1"))
            .1
            .page,
        page(0, u32::MAX, true)
    );
    assert_eq!(
        get(&p, "/interface/main/finder/patient_select.php?fstart=200")
            .1
            .page,
        page(200, 100, false)
    );
    for (target, want) in [
        ("/apis/default/fhir/$export", "export"),
        ("/apis/default/fhir/Patient/$export", "export"),
        ("/apis/default/fhir/Group/5/$export", "export"),
        ("/interface/reports/patient_list.php", "list"),
        ("/interface/usergroup/usergroup_admin.php", "admin"),
        ("/interface/usergroup/adminacl.php", "admin"),
        ("/interface/super/edit_globals.php", "admin"),
        ("/interface/usergroup/user_info.php", "view"),
        ("/interface/usergroup/mfa_registrations.php", "view"),
    ] {
        assert_eq!(class_of_target(&p, target), want, "{target}");
    }
    assert_eq!(
        class_for(&p, "POST", "/apis/default/fhir/DocumentReference/$docref"),
        "export"
    );
    assert_eq!(
        get(&p, "/apis/default/fhir/Patient/$export").1.patient,
        None
    );
    let r = &p.reading;
    // Report CSVs are forced downloads.
    assert!(r.is_export(
        Some("application/force-download"),
        Some("attachment; filename=patient_list.csv")
    ));
    assert!(r.is_export(Some("application/force-download"), None));
    assert!(r.is_export(Some("application/fhir+ndjson"), None));
    assert!(!r.is_export(Some("application/fhir+json"), None));
    assert!(!r.is_export(Some("text/html; charset=utf-8"), None));
}

// ---- generic FHIR ----

#[test]
fn generic_fhir_reads() {
    let p = shipped("generic-fhir.toml");
    for target in [
        "/fhir/Patient/123",
        "/fhir/Patient/123/_history/2",
        "/fhir/Patient/123/Observation?code=1234-5",
        "/fhir/Patient/123/$everything",
        "/fhir/Patient?_id=123",
        "/fhir/Observation?patient=123",
        "/fhir/Observation?patient=Patient/123",
        "/fhir/Encounter?subject=Patient/123",
        "/fhir/Encounter?subject=http://h.example/fhir/Patient/123",
        "/fhir/Condition?subject:Patient=123",
        "/fhir/Observation?patient=123&patient=456",
    ] {
        assert_eq!(patient(&p, target).as_deref(), Some("123"), "{target}");
    }
    for target in [
        "/fhir/Observation?subject=Group/5",
        "/fhir/Observation?code=1234-5",
        "/fhir/metadata",
        "/fhir/Patient/$export",
        "/fhir/Patient/_search",
    ] {
        assert_eq!(patient(&p, target), None, "{target}");
    }
    assert_eq!(class_of_target(&p, "/fhir/Patient/123"), "view");
    assert_eq!(class_of_target(&p, "/fhir/Patient?_id=123"), "list");
    assert_eq!(
        class_of_target(&p, "/fhir/Observation?patient=123"),
        "search"
    );
    // POSTed searches carry their parameters in a form body.
    for (path, body) in [
        ("/fhir/Patient/_search", "_id=124"),
        ("/fhir/Observation/_search", "patient=124"),
        ("/fhir/Observation/_search", "subject=Patient/124"),
    ] {
        let (_, r) = read(&p, "POST", path, Some(body), None);
        assert_eq!(r.patient.as_deref(), Some("124"), "{path} {body}");
    }
    // Created and updated resources name their patient in JSON.
    let obs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/125"}});
    for (method, path) in [
        ("POST", "/fhir/Observation"),
        ("PUT", "/fhir/Observation/o1"),
    ] {
        let (_, r) = read(&p, method, path, None, Some(&obs));
        assert_eq!(r.patient.as_deref(), Some("125"), "{method} {path}");
    }
    let imm = json!({"resourceType": "Immunization", "patient": {"reference": "Patient/126"}});
    assert_eq!(
        read(&p, "POST", "/fhir/Immunization", None, Some(&imm))
            .1
            .patient
            .as_deref(),
        Some("126")
    );
    assert_eq!(
        read(&p, "POST", "/fhir/Observation", None, Some(&json!({})))
            .1
            .patient,
        None
    );
    let pat = json!({"resourceType": "Patient", "id": "127"});
    assert_eq!(
        read(&p, "PUT", "/fhir/Patient/127", None, Some(&pat))
            .1
            .patient
            .as_deref(),
        Some("127")
    );
}

#[test]
fn generic_fhir_pages_and_exports() {
    let p = shipped("generic-fhir.toml");
    assert_eq!(get(&p, "/fhir/Patient").1.page, page(0, 20, false));
    assert_eq!(
        get(&p, "/fhir/Patient?_count=50&_offset=100").1.page,
        page(100, 50, true)
    );
    // Servlets read the first of repeated parameters.
    assert_eq!(
        get(&p, "/fhir/Patient?_count=10&_count=5000").1.page,
        page(0, 10, true)
    );
    let (_, r) = get(&p, "/fhir/Patient?_count=1000000");
    assert_eq!(r.page, page(0, 1_000_000, true));
    assert!(r.page.unwrap().size > p.reading.paging.normal_max);
    assert_eq!(
        get(
            &p,
            "/fhir/Observation?_getpages=abc&_getpagesoffset=40&_count=20"
        )
        .1
        .page,
        page(40, 20, true)
    );
    assert_eq!(
        get(&p, "/api/patients?page=2&limit=25").1.page,
        page(50, 25, true)
    );
    for target in [
        "/fhir/$export",
        "/fhir/Patient/$export",
        "/fhir/Group/g1/$export",
        "/fhir/Patient/$everything",
    ] {
        assert_eq!(class_of_target(&p, target), "export", "{target}");
    }
    assert_eq!(class_of_target(&p, "/fhir/Binary/b1"), "file");
    let r = &p.reading;
    assert!(r.is_export(Some("application/fhir+ndjson"), None));
    assert!(r.is_export(Some("text/csv"), None));
    assert!(!r.is_export(Some("application/fhir+json;charset=utf-8"), None));
}

#[test]
fn every_shipped_profile_passes_the_configuration_check() {
    // Only the sample portal's page naming the signed-in user is known exactly; the others
    // ship without [login.confirm], and check-config says what that turns off.
    for (name, confirms) in [
        ("sample-portal.toml", true),
        ("mediboard.toml", false),
        ("openemr.toml", false),
        ("generic-fhir.toml", false),
        ("generic-form.toml", false),
        ("django-admin.toml", false),
    ] {
        let profile = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/profiles")
            .join(name);
        let text = format!(
            "[[listener]]\naddress = \"127.0.0.1:1\"\n[policy]\ntime_zone = \"Europe/Paris\"\n\
             [[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:1\"\nprofile = \"{}\"\n",
            profile.display()
        );
        let config = crate::config::Config::demo_from_toml(Path::new("t.toml"), &text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (no_confirm, others): (Vec<&String>, Vec<&String>) = config
            .warnings
            .iter()
            .partition(|w| w.contains("has no [login.confirm]"));
        assert!(others.is_empty(), "{name}: {others:?}");
        assert_eq!(no_confirm.is_empty(), confirms, "{name}: {no_confirm:?}");
    }
}
