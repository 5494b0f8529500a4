//! The chain's verifier on entries in memory: each kind of tampering, and what is not one.

use serde_json::json;

use super::chain::{Anchor, Chainer, Checkpoint, Problem, Report, Verifier};
use super::signing::{self, Signer};
use super::Entry;
use crate::factors::crypto::KeyRing;

fn entry(i: i64) -> Entry {
    Entry {
        id: format!("{i:032x}"),
        at_us: 1_000 * i,
        level: "warn".into(),
        event: "login".into(),
        user: Some("dr.martin".into()),
        fields: json!({ "client": "10.1.2.3", "n": i, "ratio": 0.25 })
            .as_object()
            .unwrap()
            .clone(),
        link: None,
    }
}

/// `n` entries linked into chain `name`.
fn chain(keys: &KeyRing, name: &str, n: i64) -> Vec<Entry> {
    let mut entries: Vec<Entry> = (1..=n).map(entry).collect();
    let links = Chainer::new(name.into()).links(keys, &entries);
    for (e, l) in entries.iter_mut().zip(links) {
        e.link = Some(l);
    }
    entries
}

fn check(keys: &KeyRing, entries: &[Entry], anchors: Vec<Anchor>, cps: Vec<Checkpoint>) -> Report {
    let mut v = Verifier::new(keys, anchors, cps, None);
    for e in entries {
        v.feed(&place(e), e);
    }
    v.finish()
}

/// An entry's place in the walk.
fn place(e: &Entry) -> super::Cursor {
    match &e.link {
        Some(l) => (l.chain.clone(), l.seq, e.id.clone()),
        None => (String::new(), 0, e.id.clone()),
    }
}

/// Sorted as the stores give them: (chain, seq, id).
fn in_order(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by_key(place);
    entries
}

fn checkpoint(signer: &Signer, e: &Entry) -> Checkpoint {
    let l = e.link.as_ref().unwrap();
    signer.sign(&l.chain, l.seq, &l.mac, 99)
}

#[test]
fn an_untouched_trail_is_intact_and_a_rotated_ring_still_verifies_it() {
    let keys = KeyRing::ephemeral();
    let mut all = chain(&keys, "a", 5);
    all.extend(chain(&keys, "b", 3));
    let signer = Signer::ephemeral();
    let cp = checkpoint(&signer, &all[3]);
    let r = check(&keys, &all, vec![], vec![cp.clone()]);
    assert!(r.intact(), "{:?}", r.problems);
    let a = &r.chains[0];
    assert_eq!((a.first, a.last, a.entries), (1, 5, 5));
    assert_eq!((a.checkpoint, a.unconfirmed), (Some(4), 1));
    assert_eq!(
        (r.chains[1].chain.as_str(), r.chains[1].unconfirmed),
        ("b", 3)
    );

    // A new key put first: entries MACed under the old one still verify.
    let old = KeyRing::generate_line("old");
    let (ring_old, ring_both) = (
        KeyRing::parse(&old).unwrap(),
        KeyRing::parse(&format!("{}\n{old}", KeyRing::generate_line("new"))).unwrap(),
    );
    let r = check(&ring_both, &chain(&ring_old, "a", 4), vec![], vec![]);
    assert!(r.intact(), "{:?}", r.problems);
    // Another ring altogether: nothing verifies.
    let r = check(
        &KeyRing::ephemeral(),
        &chain(&ring_old, "a", 2),
        vec![],
        vec![],
    );
    assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
}

#[test]
fn an_edited_entry_is_named_first_and_alone() {
    let keys = KeyRing::ephemeral();
    for edit in [
        (|e: &mut Entry| e.user = Some("inf.durand".into())) as fn(&mut Entry),
        |e| e.at_us += 1,
        |e| e.event = "logout".into(),
        |e| {
            e.fields.insert("client".into(), json!("10.9.9.9"));
        },
        |e| e.id = "f".repeat(32),
    ] {
        let mut all = chain(&keys, "a", 6);
        edit(&mut all[3]);
        let r = check(&keys, &all, vec![], vec![]);
        assert_eq!(
            r.problems,
            [Problem::Altered {
                chain: "a".into(),
                seq: 4,
                id: all[3].id.clone()
            }]
        );
    }
}

#[test]
fn a_removed_entry_a_swapped_pair_and_a_forged_one_are_caught() {
    let keys = KeyRing::ephemeral();
    let mut all = chain(&keys, "a", 6);
    all.remove(3);
    let r = check(&keys, &all, vec![], vec![]);
    assert_eq!(
        r.problems,
        [Problem::Removed {
            chain: "a".into(),
            from: 4,
            to: 4
        }]
    );

    // Two entries swap places (their numbers exchanged, so no gap shows).
    let mut all = chain(&keys, "a", 6);
    let (s4, s5) = (
        all[3].link.as_ref().unwrap().seq,
        all[4].link.as_ref().unwrap().seq,
    );
    all[3].link.as_mut().unwrap().seq = s5;
    all[4].link.as_mut().unwrap().seq = s4;
    let r = check(&keys, &in_order(all), vec![], vec![]);
    assert!(
        matches!(r.problems.first(), Some(Problem::Altered { seq: 4, .. })),
        "{:?}",
        r.problems
    );

    // An entry added with the number of an existing one, MAC copied from it.
    let mut all = chain(&keys, "a", 6);
    let mut forged = all[2].clone();
    forged.id = "0".repeat(31) + "a";
    forged.user = Some("someone.else".into());
    all.push(forged);
    let r = check(&keys, &in_order(all), vec![], vec![]);
    assert!(
        matches!(r.problems[..], [Problem::Altered { seq: 3, .. }]),
        "{:?}",
        r.problems
    );
}

#[test]
fn the_newest_entries_removed_are_caught_against_the_last_checkpoint_only() {
    let keys = KeyRing::ephemeral();
    let signer = Signer::ephemeral();
    let all = chain(&keys, "a", 6);
    let cp = checkpoint(&signer, &all[4]);
    // After the checkpoint: removing entry 6 cannot be seen (it is reported unconfirmed).
    let r = check(&keys, &all[..5], vec![], vec![cp.clone()]);
    assert!(r.intact());
    assert_eq!(r.chains[0].unconfirmed, 0);
    // Up to the checkpoint: caught.
    let r = check(&keys, &all[..3], vec![], vec![cp.clone()]);
    assert_eq!(
        r.problems,
        [Problem::Truncated {
            chain: "a".into(),
            checkpoint: 5,
            last: Some(3)
        }]
    );
    // The whole chain.
    let r = check(&keys, &[], vec![], vec![cp.clone()]);
    assert_eq!(
        r.problems,
        [Problem::Truncated {
            chain: "a".into(),
            checkpoint: 5,
            last: None
        }]
    );
    // The checkpoint's entry is there, with another MAC (rewritten under a stolen ring).
    let mut other = cp.clone();
    other.mac = all[3].link.as_ref().unwrap().mac.clone();
    let r = check(&keys, &all, vec![], vec![other]);
    assert_eq!(
        r.problems,
        [Problem::CheckpointMismatch {
            chain: "a".into(),
            seq: 5
        }]
    );
}

#[test]
fn a_pruned_start_needs_its_anchor_and_the_anchor_needs_the_ring() {
    let keys = KeyRing::ephemeral();
    let all = chain(&keys, "a", 6);
    let r = check(&keys, &all[2..], vec![], vec![]);
    assert_eq!(
        r.problems,
        [Problem::HeadRemoved {
            chain: "a".into(),
            first: 3
        }]
    );
    let anchor = Anchor::new(&keys, all[1].link.as_ref().unwrap());
    let r = check(&keys, &all[2..], vec![anchor.clone()], vec![]);
    assert!(r.intact(), "{:?}", r.problems);
    assert_eq!(r.chains[0].first, 3);
    // More removed than the anchor says.
    let r = check(&keys, &all[3..], vec![anchor.clone()], vec![]);
    assert_eq!(
        r.problems,
        [Problem::HeadRemoved {
            chain: "a".into(),
            first: 4
        }]
    );
    // An anchor moved on by someone without the ring.
    let mut moved = Anchor::new(&keys, all[2].link.as_ref().unwrap());
    moved.tag = anchor.tag.clone();
    let r = check(&keys, &all[3..], vec![moved], vec![]);
    assert!(
        matches!(
            r.problems[..],
            [
                Problem::ForgedAnchor { .. },
                Problem::HeadRemoved { first: 4, .. }
            ]
        ),
        "{:?}",
        r.problems
    );
}

#[test]
fn only_checkpoints_signed_by_a_trusted_key_and_unedited_count() {
    let (signer, stranger) = (Signer::ephemeral(), Signer::ephemeral());
    let trusted = [signer.public().to_string()];
    let good = signer.sign("a", 5, "k:00", 7);
    let mut edited = good.clone();
    edited.seq = 9;
    let foreign = stranger.sign("a", 9, "k:00", 7);
    let sorted = signing::trusted(vec![good.clone(), edited, foreign], &trusted);
    assert_eq!(sorted.good, std::slice::from_ref(&good));
    let whys: Vec<String> = sorted.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(whys.len(), 1);
    assert!(whys[0].contains("signature is wrong"), "{whys:?}");
    assert_eq!(sorted.unknown_signers, [("a".to_string(), 9)]);

    // Read back from the log, whichever layout the formatter used.
    let flat = serde_json::to_value(&good).unwrap();
    let mut flat_line = flat.clone();
    flat_line["event"] = json!("audit_checkpoint");
    let nested =
        json!({ "timestamp": "x", "fields": flat_line.clone(), "target": "vigie::checkpoint" });
    // And as the SIEM's JSON-lines sink received it (an ECS event).
    let as_entry = Entry {
        id: "c1".into(),
        at_us: good.at_us,
        level: "info".into(),
        event: "audit_checkpoint".into(),
        user: None,
        fields: flat.as_object().unwrap().clone(),
        link: None,
    };
    let ecs = crate::alerts::events::to_ecs(&as_entry);
    let log = format!(
        "{}\nnot json\n{}\n{}\n{}\n",
        flat_line,
        nested,
        json!({ "fields": { "event": "login" } }),
        ecs
    );
    assert_eq!(signing::from_log(&log), [good.clone(), good.clone(), good]);
}

#[test]
fn the_signing_key_is_made_once_and_kept_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = signing::key_file_for(&dir.path().join("vigie.sqlite"));
    let first = Signer::load(None, &file).unwrap();
    let again = Signer::load(None, &file).unwrap();
    assert_eq!(first.public(), again.public());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        signing::trusted_keys(None, &file).unwrap(),
        [first.public().to_string()]
    );
}

#[test]
fn each_entry_commits_to_the_one_before_it_not_only_to_its_number() {
    // Two histories of one chain that differ at entry 2 (a restored copy spliced into the
    // live one): each entry is valid in its own history, the splice is not.
    let keys = KeyRing::ephemeral();
    let live = chain(&keys, "a", 4);
    let mut other: Vec<Entry> = (1..=4).map(entry).collect();
    other[1].user = Some("inf.durand".into());
    let links = Chainer::new("a".into()).links(&keys, &other);
    for (e, l) in other.iter_mut().zip(links) {
        e.link = Some(l);
    }
    assert!(check(&keys, &other, vec![], vec![]).intact());
    let spliced = vec![
        live[0].clone(),
        other[1].clone(),
        live[2].clone(),
        live[3].clone(),
    ];
    let r = check(&keys, &spliced, vec![], vec![]);
    assert!(
        matches!(r.problems[..], [Problem::Altered { seq: 3, .. }]),
        "{:?}",
        r.problems
    );
}

#[test]
fn an_entry_without_a_whole_link_after_chaining_began_is_a_break() {
    let keys = KeyRing::ephemeral();
    let all = chain(&keys, "a", 3);
    let since = all[0].at_us;
    let mut v = Verifier::new(&keys, vec![], vec![], Some(since));
    // From before the chain: counted apart, not a break.
    let old = Entry {
        at_us: since - 1,
        ..entry(900)
    };
    v.feed(&place(&old), &old);
    // Inserted since, without a link; and one whose link lost its MAC.
    let forged = Entry {
        at_us: since + 5,
        ..entry(901)
    };
    v.feed(&place(&forged), &forged);
    let stripped = Entry {
        link: None,
        ..all[1].clone()
    };
    v.feed(&("a".to_string(), 2, stripped.id.clone()), &stripped);
    let r = v.finish();
    assert_eq!(r.unchained, 1);
    assert_eq!(
        r.problems,
        [
            Problem::Unlinked { id: forged.id },
            Problem::Unlinked { id: stripped.id }
        ]
    );
}
