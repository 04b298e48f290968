//! End-to-end: create → attach → type → see the output.

mod common;

use common::{STEP, TestServer};
use tmuxgate_client::attach_request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_command_output_arrives() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let session = client
        .create_session("smoke", 80, 24)
        .await
        .expect("create");
    let mut att = client
        .attach(attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach");
    assert!(att.snapshot);
    client
        .send_input(att.channel, b"echo hello-$((6*7))\r")
        .await
        .expect("input");
    att.wait_for(b"hello-42", STEP).await.expect("output");
}
