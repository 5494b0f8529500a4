//! Clinicians at work: ward nurses (day and night), physicians, admissions clerks. Each
//! signs in at the start of a shift from a workstation, reads patient records with human
//! pauses, revisits, searches, takes breaks, and signs out. Their alerts are false alerts.

use rand::rngs::StdRng;
use rand::Rng;

use super::client::{Client, Reply, BROWSER};
use super::{HOUR, MINUTE, SECOND};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DayNurse,
    NightNurse,
    Physician,
    Clerk,
}

impl Kind {
    /// Shift start (hour of day) and length (hours).
    fn shift(self) -> (i64, i64) {
        match self {
            Kind::DayNurse => (7, 12),
            Kind::NightNurse => (19, 12),
            Kind::Physician => (8, 10),
            Kind::Clerk => (8, 8),
        }
    }

    /// Pause between two pages: at least `lo` seconds, usually a minute or two.
    fn pause(self, rng: &mut StdRng) -> i64 {
        let (lo, spread) = match self {
            Kind::DayNurse => (20.0, 70.0),
            Kind::NightNurse => (40.0, 160.0),
            Kind::Physician => (15.0, 60.0),
            Kind::Clerk => (15.0, 60.0),
        };
        // Exponential tail: people read some pages for a long time.
        let u: f64 = rng.random_range(0.0001..1.0);
        ((lo - spread * u.ln()) * SECOND as f64) as i64
    }
}

pub struct Clinician {
    pub user: String,
    password: String,
    pub kind: Kind,
    client: Client,
    /// The ward's patients (in care now); anyone else is a consult or an admission.
    ward: Vec<u32>,
    patients: u32,
    pub next: i64,
    shift_end: i64,
    current: Option<u32>,
    pub hours: f64,
    pub requests: u64,
    pub alerts: u64,
    /// Pages the gateway refused them (held, throttled, step-up): the cost of a false alert.
    pub refused: u64,
    pub held: bool,
    /// The shift's handover still to go through: the ward's patients, one after another,
    /// about 30 in 10 minutes (nurses and physicians, at the start of each shift).
    handover: Vec<u32>,
}

impl Clinician {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user: String,
        password: String,
        kind: Kind,
        port: u16,
        ip: &str,
        ward: Vec<u32>,
        patients: u32,
        day0: i64,
        rng: &mut StdRng,
    ) -> Self {
        let (start, _) = kind.shift();
        // Arrive within a quarter hour of the shift's start.
        let jitter = rng.random_range(0..15 * MINUTE);
        Self {
            user,
            password,
            kind,
            client: Client::new(port, ip, BROWSER),
            ward,
            patients,
            next: day0 + start * HOUR + jitter,
            shift_end: 0,
            current: None,
            hours: 0.0,
            requests: 0,
            alerts: 0,
            refused: 0,
            held: false,
            handover: Vec::new(),
        }
    }

    pub fn step(&mut self, now: i64, end: i64, rng: &mut StdRng) {
        if now >= self.shift_end {
            // A new shift: sign in (also after the gateway ended the session).
            let (_, len) = self.kind.shift();
            self.shift_end = now + len * HOUR;
            self.hours += ((self.shift_end.min(end) - now) as f64 / HOUR as f64).max(0.0);
            self.requests += 2;
            if !self.client.login(&self.user, &self.password) {
                self.refused += 1;
            }
            self.fetch("/style.css");
            if self.kind != Kind::Clerk {
                use rand::seq::SliceRandom;
                self.handover = self.ward.clone();
                self.handover.shuffle(rng);
                self.fetch("/index.php?m=dPpatients&tab=vw_idx_patients");
            }
            self.next = now + self.kind.pause(rng);
            return;
        }
        if let Some(id) = self.handover.pop() {
            self.fetch(&Self::record(id));
            self.current = Some(id);
            if self.handover.len() % 5 == 0 {
                self.fetch("/style.css");
            }
            self.next = now + rng.random_range(12..28) * SECOND;
            return;
        }
        let path = self.choose(rng);
        let reply = self.fetch(&path);
        if reply.status == 200 {
            if let Some(id) = path
                .split("patient_id=")
                .nth(1)
                .and_then(|v| v.parse().ok())
            {
                self.current = Some(id);
            }
        }
        let mut next = now + self.kind.pause(rng);
        if rng.random_bool(0.04) {
            next += rng.random_range(10 * MINUTE..40 * MINUTE); // a break
        }
        if next >= self.shift_end {
            // Off until tomorrow's shift.
            next = self.shift_end - self.kind.shift().1 * HOUR
                + 24 * HOUR
                + rng.random_range(0..15 * MINUTE);
        }
        self.next = next;
    }

    fn fetch(&mut self, path: &str) -> Reply {
        self.requests += 1;
        let reply = self.client.get(path);
        let held = reply.header("x-vigie-held").is_some();
        let step_up = reply
            .header("location")
            .is_some_and(|l| l.starts_with("/.vigie/factor"));
        if held || step_up || reply.status == 429 {
            self.refused += 1;
            self.held |= held;
        }
        reply
    }

    fn ward_patient(&self, rng: &mut StdRng) -> u32 {
        self.ward[rng.random_range(0..self.ward.len())]
    }

    fn record(id: u32) -> String {
        format!("/index.php?m=dPpatients&tab=vw_full_patients&patient_id={id}")
    }

    fn choose(&self, rng: &mut StdRng) -> String {
        let roll: f64 = rng.random();
        let search = |q: &str, page: u32| {
            format!("/index.php?m=dPpatients&tab=vw_idx_patients&q={q}&page={page}")
        };
        let current = "/index.php?m=dPpatients&tab=vw_full_patients".to_string();
        match self.kind {
            Kind::DayNurse | Kind::NightNurse => match roll {
                r if r < 0.70 => Self::record(self.ward_patient(rng)),
                r if r < 0.85 && self.current.is_some() => current,
                r if r < 0.95 => search("", 0),
                _ => "/style.css".into(),
            },
            Kind::Physician => match roll {
                r if r < 0.65 => Self::record(self.ward_patient(rng)),
                r if r < 0.72 => Self::record(rng.random_range(1..=self.patients)),
                r if r < 0.85 => format!("/api/dossierpatient/patients/{}", self.ward_patient(rng)),
                r if r < 0.95 => search("", 0),
                _ => "/style.css".into(),
            },
            Kind::Clerk => match roll {
                r if r < 0.50 => search(
                    ["MAR", "BER", "DUR", "PET", "LEF", "MOR"][rng.random_range(0..6)],
                    0,
                ),
                r if r < 0.58 => search("", rng.random_range(0..2)),
                r if r < 0.75 => Self::record(rng.random_range(1..=self.patients)),
                r if r < 0.92 && self.current.is_some() => current,
                _ => "/style.css".into(),
            },
        }
    }
}
