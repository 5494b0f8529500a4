//! Micro-benchmarks of stage 4, which every request to a portal with sessions pays for:
//! the policy decision (first-match rules, profile classes, a privileged pack) and the
//! in-process budget check (one GCRA update in a sharded map).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use vigie::budget::Budgets;
use vigie::config::Config;
use vigie::identity::session::SystemClock;
use vigie::policy::Facts;

fn config() -> Config {
    let profile = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/profiles/sample-portal.toml"
    );
    let mut rules = String::new();
    // Ten rules that do not match, then the one that does: a realistic worst case.
    for i in 0..10 {
        rules += &format!("[[rule]]\nname = \"r{i}\"\npath = \"/module{i}/**\"\ndeny = true\n");
    }
    rules += "[[rule]]\nname = \"export\"\npath = \"/index.php\"\nquery = { raw = \"ajax_export*\" }\nlevel = \"phishing_resistant\"\nwithin_minutes = 5\n";
    rules += "[[privileged]]\nname = \"admins\"\ngroups = [\"admin\"]\nhours = \"07:00-20:00\"\n";
    // Budgets the benchmark never exhausts, so it measures the whole check every time.
    rules += "[budgets.source]\nrequests = 1000000\nper = \"second\"\n[budgets.view]\nrequests = 1000000\nper = \"second\"\n";
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:1\"\n[policy]\ntime_zone = \"Europe/Paris\"\n{rules}[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:1\"\nprofile = \"{profile}\"\n"
    );
    Config::demo_from_toml(std::path::Path::new("bench.toml"), &text).expect("bench config")
}

fn benches(c: &mut Criterion) {
    let config = config();
    let portal = &config.portals[0];
    let groups = vec!["physician".to_string()];
    let admins = vec!["admin".to_string()];
    let facts = |query: &'static str, groups: &'static [String]| Facts {
        host: "ehr.local",
        method: "GET",
        path: "/index.php",
        query: Some(query),
        user: Some("dr.martin"),
        groups,
        ip: "10.1.2.3".parse().unwrap(),
        now: 1_795_424_400,
        break_glass: false,
    };
    let groups: &'static [String] = Box::leak(groups.into_boxed_slice());
    let admins: &'static [String] = Box::leak(admins.into_boxed_slice());
    // An ordinary page view: every rule tried, the profile's classes read, no pack.
    let view = facts("m=dPpatients&tab=vw_full_patients&patient_id=1234", groups);
    c.bench_function("policy/decide_view_11_rules", |b| {
        b.iter(|| {
            config
                .policy
                .decide(&portal.policy_view(&view), true, black_box(&view))
        })
    });
    // An export by a privileged user: the last rule matches, the pack's hours are checked.
    let export = facts("m=dPpatients&raw=ajax_export_patients_csv", admins);
    c.bench_function("policy/decide_export_privileged", |b| {
        b.iter(|| {
            config
                .policy
                .decide(&portal.policy_view(&export), true, black_box(&export))
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let budgets = Budgets::new(config.budgets.clone(), None, 1, Arc::new(SystemClock));
    let ip = "10.1.2.3".parse().unwrap();
    // The source budget and the identity's class budget, both in process.
    c.bench_function("budget/request_in_process", |b| {
        b.iter(|| rt.block_on(budgets.request(Some("dr.martin"), "view", 1.0, black_box(ip))))
    });
}

criterion_group!(policy, benches);
criterion_main!(policy);
