use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_contract_and_contention() {
    let server = crate::testing::RedisServer::start();
    let redis = server.store(Arc::default());
    let store = Arc::new(RedisFactors::new(redis));
    // Challenges expire by Redis TTL; the contract's "expired" case uses the store clock.
    crate::factors::store::tests::contract(store.as_ref(), false).await;
    crate::factors::store::tests::contention(store).await;
}
