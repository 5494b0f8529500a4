//! WebAuthn passkeys with `webauthn-rs`: the relying party from config, ceremonies whose
//! state stays server-side. User verification is required on every ceremony.

use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

/// How long a browser has to answer a WebAuthn prompt.
pub const CEREMONY_SECONDS: u64 = 120;

pub struct RelyingParty {
    webauthn: Webauthn,
}

impl RelyingParty {
    /// `origins` were validated against `rp_id` with the config; an empty list allows none.
    pub fn new(rp_id: &str, rp_name: &str, origins: &[String]) -> Result<Self, String> {
        let parsed: Vec<Url> = origins
            .iter()
            .map(|o| Url::parse(o).map_err(|e| format!("origin `{o}`: {e}")))
            .collect::<Result<_, _>>()?;
        let fallback = Url::parse(&format!("https://{rp_id}")).map_err(|e| e.to_string())?;
        let first = parsed.first().unwrap_or(&fallback);
        let mut builder = WebauthnBuilder::new(rp_id, first)
            .map_err(|e| format!("relying party `{rp_id}`: {e}"))?
            .rp_name(rp_name)
            .timeout(std::time::Duration::from_secs(CEREMONY_SECONDS));
        for o in parsed.iter().skip(1) {
            builder = builder.append_allowed_origin(o);
        }
        Ok(Self {
            webauthn: builder.build().map_err(|e| e.to_string())?,
        })
    }

    /// A stable WebAuthn user handle: derived from the user name, carries no name itself.
    pub fn user_handle(user: &str) -> Uuid {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("vigie user handle\0{user}"));
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid_from(bytes)
    }

    pub fn start_registration(
        &self,
        user: &str,
        existing: &[Passkey],
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration), String> {
        let exclude = existing.iter().map(|p| p.cred_id().clone()).collect();
        self.webauthn
            .start_passkey_registration(Self::user_handle(user), user, user, Some(exclude))
            .map_err(|e| e.to_string())
    }

    pub fn finish_registration(
        &self,
        response: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<Passkey, String> {
        self.webauthn
            .finish_passkey_registration(response, state)
            .map_err(|e| e.to_string())
    }

    pub fn start_authentication(
        &self,
        passkeys: &[Passkey],
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication), String> {
        self.webauthn
            .start_passkey_authentication(passkeys)
            .map_err(|e| e.to_string())
    }

    /// Verify an assertion; returns the id of the credential used and the result to fold into
    /// the stored passkey (signature counter). Another user's credential is refused because
    /// the state only allows this user's credentials.
    pub fn finish_authentication(
        &self,
        response: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> Result<webauthn_rs::prelude::AuthenticationResult, String> {
        self.webauthn
            .finish_passkey_authentication(response, state)
            .map_err(|e| e.to_string())
    }
}

fn uuid_from(bytes: [u8; 16]) -> Uuid {
    Uuid::from_bytes(bytes)
}
