//! Stage 2, identify: who is behind the request.
//!
//! Sessions, portal-login interception and gateway logins arrive with the identity issue;
//! until then no request carries an identity and every request is handled as anonymous.

/// Who the gateway believes is behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Identity {
    #[default]
    Anonymous,
}

impl Identity {
    /// Label for logs; never a raw credential.
    pub fn label(&self) -> &'static str {
        match self {
            Identity::Anonymous => "anonymous",
        }
    }
}
