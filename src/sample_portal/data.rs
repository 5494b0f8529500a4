//! Generated, entirely fictitious patients (deterministic seed), and the portal's accounts.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Patient {
    pub id: u32,
    /// Hospital patient number (IPP), as French EHRs show it.
    pub ipp: String,
    pub nom: String,
    pub prenom: String,
    pub naissance: String,
    pub sexe: char,
    pub service: &'static str,
    pub motif: &'static str,
    pub medecin: &'static str,
}

const NOMS: &[&str] = &[
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefebvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefevre",
    "Faure",
    "Andre",
    "Mercier",
    "Blanc",
    "Guerin",
    "Boyer",
    "Garnier",
    "Chevalier",
];
const PRENOMS_F: &[&str] = &[
    "Marie", "Jeanne", "Camille", "Léa", "Chloé", "Manon", "Inès", "Sarah", "Louise", "Anne",
    "Claire", "Julie",
];
const PRENOMS_M: &[&str] = &[
    "Jean", "Pierre", "Louis", "Lucas", "Hugo", "Paul", "Nicolas", "Thomas", "Karim", "Julien",
    "Marc", "Antoine",
];
const SERVICES: &[&str] = &[
    "Cardiologie",
    "Pneumologie",
    "Urgences",
    "Pédiatrie",
    "Gériatrie",
    "Chirurgie digestive",
    "Neurologie",
    "Maternité",
];
const MOTIFS: &[&str] = &[
    "Bilan de douleur thoracique (fictif)",
    "Suivi post-opératoire (fictif)",
    "Exacerbation de BPCO (fictif)",
    "Chute à domicile (fictif)",
    "Surveillance de grossesse (fictif)",
    "Bilan neurologique (fictif)",
    "Fièvre persistante (fictif)",
    "Contrôle tensionnel (fictif)",
];
const MEDECINS: &[&str] = &[
    "Dr Martin",
    "Dr Nguyen",
    "Dr Haddad",
    "Dr Colin",
    "Dr Perrin",
];

/// `count` patients with ids `1..=count`, identical on every run.
pub fn generate(count: u32, seed: u64) -> Vec<Patient> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (1..=count)
        .map(|id| {
            let female = rng.random_bool(0.5);
            let prenoms = if female { PRENOMS_F } else { PRENOMS_M };
            Patient {
                id,
                ipp: format!("{:08}", 10_000_000 + rng.random_range(0..89_999_999u32)),
                nom: NOMS[rng.random_range(0..NOMS.len())].to_uppercase(),
                prenom: prenoms[rng.random_range(0..prenoms.len())].to_string(),
                naissance: format!(
                    "{:04}-{:02}-{:02}",
                    rng.random_range(1930..2024),
                    rng.random_range(1..=12),
                    rng.random_range(1..=28)
                ),
                sexe: if female { 'F' } else { 'M' },
                service: SERVICES[rng.random_range(0..SERVICES.len())],
                motif: MOTIFS[rng.random_range(0..MOTIFS.len())],
                medecin: MEDECINS[rng.random_range(0..MEDECINS.len())],
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Physician,
    Nurse,
    Clerk,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Administrateur",
            Role::Physician => "Médecin",
            Role::Nurse => "Infirmier·ère",
            Role::Clerk => "Secrétariat des admissions",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Account {
    pub username: &'static str,
    pub password: &'static str,
    pub role: Role,
}

/// The sample portal's accounts. Demo only: the passwords are printed by `vigie demo`.
pub const ACCOUNTS: &[Account] = &[
    Account {
        username: "admin",
        password: "admin-demo",
        role: Role::Admin,
    },
    Account {
        username: "dr.martin",
        password: "martin-demo",
        role: Role::Physician,
    },
    Account {
        username: "inf.durand",
        password: "durand-demo",
        role: Role::Nurse,
    },
    Account {
        username: "sec.bernard",
        password: "bernard-demo",
        role: Role::Clerk,
    },
];

#[cfg(test)]
mod tests;
