//! What the revocation stream has said, as a resource server needs it on every request: revoked `jti`s until
//! their `exp`, cut-offs per client and per partner, disabled and deleted clients, suspended partners.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use super::set::Change;
use crate::principal::Principal;

/// A revoked `jti` is kept this long after its `exp`, beyond any leeway a verifier allows.
const JTI_MARGIN_SECS: u64 = 300;

/// The state, also what the state file holds.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DenyState {
    /// The highest sequence number applied (0: none).
    pub last_seq: i64,
    revoked_jtis: HashMap<String, u64>,
    disabled_clients: HashSet<String>,
    deleted_clients: HashSet<String>,
    suspended_partners: HashSet<String>,
    client_cutoffs: HashMap<String, u64>,
    partner_cutoffs: HashMap<String, u64>,
}

/// Sizes, for the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DenySizes {
    pub revoked_tokens: usize,
    pub disabled_clients: usize,
    pub suspended_partners: usize,
    pub cutoffs: usize,
}

#[derive(Default)]
pub(crate) struct Denylist {
    state: RwLock<DenyState>,
}

impl Denylist {
    pub fn from_state(state: DenyState) -> Self {
        Denylist { state: RwLock::new(state) }
    }

    pub fn snapshot(&self) -> DenyState {
        self.state.read().expect("denylist lock").clone()
    }

    pub fn last_seq(&self) -> i64 {
        self.state.read().expect("denylist lock").last_seq
    }

    /// Applies one event (applying it twice changes nothing); `now_secs` prunes expired `jti`s.
    pub fn apply(&self, seq: i64, change: &Change, now_secs: u64) {
        let mut state = self.state.write().expect("denylist lock");
        state.last_seq = state.last_seq.max(seq);
        match change {
            Change::ClientDisabled(client) => {
                state.disabled_clients.insert(client.clone());
            }
            Change::ClientEnabled(client) => {
                state.disabled_clients.remove(client);
            }
            Change::ClientDeleted(client) => {
                state.deleted_clients.insert(client.clone());
            }
            Change::PartnerSuspended(partner) => {
                state.suspended_partners.insert(partner.clone());
            }
            Change::PartnerResumed(partner) => {
                state.suspended_partners.remove(partner);
            }
            Change::TokenRevoked { jti, exp } => {
                state.revoked_jtis.retain(|_, exp| *exp + JTI_MARGIN_SECS > now_secs);
                if exp + JTI_MARGIN_SECS > now_secs {
                    state.revoked_jtis.insert(jti.clone(), *exp);
                }
            }
            Change::ClientCutOff { client_id, issued_at_or_before } => {
                let cutoff = state.client_cutoffs.entry(client_id.clone()).or_default();
                *cutoff = (*cutoff).max(*issued_at_or_before);
            }
            Change::PartnerCutOff { partner_id, issued_at_or_before } => {
                let cutoff = state.partner_cutoffs.entry(partner_id.clone()).or_default();
                *cutoff = (*cutoff).max(*issued_at_or_before);
            }
            Change::Nothing(_) => {}
        }
    }

    /// Whether the stream has made `principal`'s token unacceptable.
    pub fn refuses(&self, principal: &Principal) -> bool {
        let state = self.state.read().expect("denylist lock");
        let cut_off = |cutoffs: &HashMap<String, u64>, id: &str| cutoffs.get(id).is_some_and(|t| principal.iat <= *t);
        state.disabled_clients.contains(&principal.client_id)
            || state.deleted_clients.contains(&principal.client_id)
            || state.suspended_partners.contains(&principal.partner_id)
            || state.revoked_jtis.contains_key(&principal.jti)
            || cut_off(&state.client_cutoffs, &principal.client_id)
            || cut_off(&state.partner_cutoffs, &principal.partner_id)
    }

    pub fn sizes(&self) -> DenySizes {
        let state = self.state.read().expect("denylist lock");
        DenySizes {
            revoked_tokens: state.revoked_jtis.len(),
            disabled_clients: state.disabled_clients.len() + state.deleted_clients.len(),
            suspended_partners: state.suspended_partners.len(),
            cutoffs: state.client_cutoffs.len() + state.partner_cutoffs.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(client: &str, partner: &str, jti: &str, iat: u64) -> Principal {
        Principal {
            partner_id: partner.into(),
            client_id: client.into(),
            scopes: vec![],
            jti: jti.into(),
            exp: iat + 600,
            iat,
        }
    }

    #[test]
    fn each_change_and_its_reversal() {
        let list = Denylist::default();
        let token = principal("c1", "p1", "j1", 1_000);
        assert!(!list.refuses(&token));
        list.apply(1, &Change::ClientDisabled("c1".into()), 1_000);
        assert!(list.refuses(&token));
        list.apply(2, &Change::ClientEnabled("c1".into()), 1_000);
        assert!(!list.refuses(&token));
        list.apply(3, &Change::PartnerSuspended("p1".into()), 1_000);
        assert!(list.refuses(&token));
        list.apply(4, &Change::PartnerResumed("p1".into()), 1_000);
        assert!(!list.refuses(&token));
        list.apply(5, &Change::TokenRevoked { jti: "j1".into(), exp: 1_600 }, 1_000);
        assert!(list.refuses(&token));
        assert!(!list.refuses(&principal("c1", "p1", "j2", 1_000)));
        list.apply(6, &Change::ClientCutOff { client_id: "c2".into(), issued_at_or_before: 1_000 }, 1_000);
        assert!(list.refuses(&principal("c2", "p1", "j3", 1_000)), "issued at the cut-off");
        assert!(!list.refuses(&principal("c2", "p1", "j4", 1_001)), "issued after it");
        list.apply(7, &Change::PartnerCutOff { partner_id: "p2".into(), issued_at_or_before: 900 }, 1_000);
        assert!(list.refuses(&principal("c9", "p2", "j5", 899)));
        assert!(!list.refuses(&principal("c9", "p2", "j6", 901)));
        list.apply(8, &Change::ClientDeleted("c3".into()), 1_000);
        list.apply(9, &Change::ClientEnabled("c3".into()), 1_000);
        assert!(list.refuses(&principal("c3", "p1", "j7", 1_000)), "a deleted client stays refused");
        assert_eq!(list.last_seq(), 9);
    }

    #[test]
    fn revoked_jtis_go_once_expired() {
        let list = Denylist::default();
        list.apply(1, &Change::TokenRevoked { jti: "old".into(), exp: 100 }, 50);
        list.apply(2, &Change::TokenRevoked { jti: "new".into(), exp: 10_000 }, 100 + JTI_MARGIN_SECS);
        assert_eq!(list.sizes().revoked_tokens, 1);
        list.apply(3, &Change::TokenRevoked { jti: "gone".into(), exp: 1 }, 100 + JTI_MARGIN_SECS);
        assert_eq!(list.sizes().revoked_tokens, 1, "a token already expired is not kept");
    }
}
