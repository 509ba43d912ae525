//! Many clients at once (ARCHITECTURE.md, "The audit pipeline"): group commits that carry hundreds of distinct secrets and
//! partners keep every secret's `last_used_at` and every partner's day count exact, on both backends.

mod common;

use std::collections::HashMap;

use common::*;
use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use partnergate::registry::partners::{self, NewPartner};
use partnergate::registry::{roles, scopes, Caller};
use partnergate::store::schema::{client_secrets, partner_usage};

const PARTNERS: usize = 20;
const CLIENTS_PER_PARTNER: usize = 50;
const TOKENS_PER_CLIENT: usize = 2;

#[tokio::test]
async fn with_a_thousand_clients_every_last_use_and_day_count_is_exact() {
    let mut server = TestServer::start_with(|config| config.client_rate_limit_per_minute = 0).await;
    let mut clients = Vec::new();
    {
        let mut conn = server.conn();
        let caller = Caller::cli();
        scopes::create(&mut conn, &caller, "bulk.read", "test scope").unwrap();
        roles::create(&mut conn, &caller, "bulk-reader", "", &strings(&["bulk.read"])).unwrap();
        for p in 0..PARTNERS {
            let partner = NewPartner {
                id: format!("bulk-{p}"),
                name: format!("Bulk {p}"),
                scope_ceiling: strings(&["bulk.read"]),
                // Half the partners have a quota (never reached), so batches take both ways of writing.
                token_quota_per_day: (p % 2 == 0).then_some(1_000_000),
                ..Default::default()
            };
            partners::create(&mut conn, &caller, &partner).unwrap();
            for _ in 0..CLIENTS_PER_PARTNER {
                clients.push(Seed::client_of(&partner.id).roles(&["bulk-reader"]).create_on(&mut conn));
            }
        }
    }

    // Every client asks twice, 64 requests at a time, so that batches mix many secrets and partners.
    let http = reqwest::Client::new();
    let url = server.url("/oauth2/token");
    let requests = clients.iter().flat_map(|client| std::iter::repeat_n(client, TOKENS_PER_CLIENT));
    let statuses: Vec<u16> = stream::iter(requests)
        .map(|client| {
            let request = http
                .post(&url)
                .header("authorization", basic_auth(&client.client.id, client.secret.secret.expose()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials");
            async move { request.send().await.expect("token request").status().as_u16() }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(statuses.iter().all(|status| *status == 200), "{:?}", statuses.iter().filter(|s| **s != 200).count());
    server.stop_keep_db().await;

    // The latest successful use of each secret, as the audit trail recorded it.
    let mut latest: HashMap<String, chrono::NaiveDateTime> = HashMap::new();
    let mut per_partner: HashMap<String, i64> = HashMap::new();
    for row in
        audit_rows(&server).into_iter().filter(|row| row.event_type == "token.request" && row.outcome == "success")
    {
        let used = latest.entry(row.secret_id.clone().expect("a secret id")).or_insert(row.occurred_at);
        *used = (*used).max(row.occurred_at);
        *per_partner.entry(row.partner_id.expect("a partner")).or_default() += 1;
    }
    assert_eq!(latest.len(), PARTNERS * CLIENTS_PER_PARTNER);
    let mut conn = server.conn();
    let stored: HashMap<String, Option<chrono::NaiveDateTime>> = client_secrets::table
        .select((client_secrets::id, client_secrets::last_used_at))
        .load(&mut *conn)
        .unwrap()
        .into_iter()
        .collect();
    for (secret, used) in &latest {
        let written = stored[secret].unwrap_or_else(|| panic!("secret {secret} has no last use"));
        assert!(written <= *used && *used - written < chrono::Duration::seconds(1), "{secret}: {written} for {used}");
    }
    let counted: Vec<(String, i64)> =
        partner_usage::table.select((partner_usage::partner_id, partner_usage::tokens)).load(&mut *conn).unwrap();
    let counted: HashMap<String, i64> = counted.into_iter().fold(HashMap::new(), |mut sum, (partner, tokens)| {
        *sum.entry(partner).or_default() += tokens;
        sum
    });
    assert_eq!(counted, per_partner);
    assert!(per_partner.values().all(|tokens| *tokens == (CLIENTS_PER_PARTNER * TOKENS_PER_CLIENT) as i64));
}

/// Issue 18 item 4: made-up client ids, which anybody can send by the thousand, are cached apart from the
/// real clients and within their own bound; before, past 100,000 entries the whole cache was cleared.
#[tokio::test]
async fn a_flood_of_made_up_client_ids_evicts_no_known_client() {
    let server = TestServer::start().await;
    let known: Vec<_> = (0..50).map(|n| server.seed(&format!("known-{n}")).role(&["k.read"]).create()).collect();
    let model = server.running().read_model();
    // The seeding's own change notices (new roles and scopes empty the cache) arrive within the feed's bound:
    // a real wait, the feed polls on real time.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for client in &known {
        server.token_for(client, &[], None).await;
        assert!(model.cached(&client.client.id).is_some_and(|snapshot| snapshot.is_some()));
    }
    for n in 0..12_000 {
        assert!(model.client(&format!("pgc_madeup{n:05}")).await.unwrap().is_none());
    }
    let stats = model.stats();
    assert!(stats.unknown <= 10_000 && stats.evictions >= 2_000, "{stats:?}");
    assert_eq!(stats.clients, known.len(), "{stats:?}");
    for client in &known {
        server.token_for(client, &[], None).await;
    }
    let after = model.stats();
    assert_eq!(after.misses, stats.misses, "every known client was still cached: {after:?}");
    assert!(after.hits >= stats.hits + known.len() as u64);
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let line = |name: &str| metrics.lines().find(|line| line.starts_with(name)).map(str::to_string);
    assert_eq!(
        line("partnergate_client_cache_entries{kind=\"client\"}").as_deref(),
        Some("partnergate_client_cache_entries{kind=\"client\"} 50")
    );
    assert!(line("partnergate_client_cache_evictions_total").is_some_and(|l| !l.ends_with(" 0")), "{metrics}");
}
