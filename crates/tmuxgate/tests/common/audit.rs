//! Reading a test gateway's audit log: every line checked against
//! `docs/audit.schema.json`.

use serde_json::Value;

use super::STEP;
use super::TestServer;

pub const SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/audit.schema.json"
));

/// Every line of `text`, each asserted valid against the schema.
pub fn validated(text: &str) -> Vec<Value> {
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let value: Value = serde_json::from_str(line).expect("a JSON line");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "line {}: {errors:?}\n{line}", n + 1);
        lines.push(value);
    }
    lines
}

/// The server's audit lines (validated) once `done` holds for them, flushing the writer
/// between looks.
pub async fn lines_when(server: &TestServer, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let path = server.dir.join("sock-state").join("audit.jsonl");
    let wait = async {
        loop {
            server.handle.flush_audit().await;
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines = validated(&text);
            if done(&lines) {
                return lines;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(STEP, wait).await.expect("audit lines")
}
