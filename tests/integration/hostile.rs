//! Hostile input: a regression corpus (`tests/corpus/`) sent to the real server and fed to the
//! configuration and catalogue parsers, plus property tests over arbitrary text. Every input
//! gets a clear answer: never a panic, a hang or a 5xx.

use crate::common::*;
use fipsgate::catalog::{Catalog, CatalogFile};
use fipsgate::config::Config;
use proptest::prelude::*;

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> =
        std::fs::read_dir(format!("{}/tests/corpus/{dir}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn hostile_reviews_get_clear_answers() {
    let s = TestServer::start(Options::default()).await;
    let c = s.client(HttpVersion::H2);
    for (name, body) in corpus("review") {
        let r = c
            .post(s.url("/validate?timeout=5s"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let status = r.status();
        let json: serde_json::Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        match status.as_u16() {
            200 => {
                assert!(json["response"]["uid"].is_string(), "{name}: {json}");
                if json["response"]["allowed"] == false {
                    assert!(
                        json["response"]["status"]["message"]
                            .as_str()
                            .is_some_and(|m| !m.is_empty()),
                        "{name}: {json}"
                    );
                }
            }
            400..=499 => assert!(
                json["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{name}: {json}"
            ),
            other => panic!("{name}: status {other}: {json}"),
        }
    }
    // Still serving.
    let (status, _, _) = post(&c, &s.url("/validate"), fixture("pod-create-dry-run.json")).await;
    assert_eq!(status, 200);
}

#[test]
fn hostile_configs_and_catalogues_are_refused_with_a_reason() {
    // No time bound here: a loaded machine makes one flaky (the loader's own bounds stop the
    // alias bomb).
    for (name, text) in corpus("config") {
        let text = String::from_utf8_lossy(&text);
        let err = Config::parse(&text, &name).expect_err(&name).to_string();
        assert!(
            err.starts_with(&name) && err.len() > name.len() + 2,
            "{name}: {err}"
        );
    }
    for (name, bytes) in corpus("catalog") {
        let text = String::from_utf8_lossy(&bytes);
        let parsed = fipsgate::config::yaml::from_str::<CatalogFile>(&text, &name);
        let built = parsed
            .map_err(|e| e.to_string())
            .and_then(|f| Catalog::build(vec![(name.clone(), f)]).map_err(|e| e.to_string()));
        let err = built.expect_err(&name);
        assert!(err.contains(&name), "{name}: {err}");
    }
}

proptest! {
    #[test]
    fn arbitrary_config_text_never_panics(text in "\\PC{0,200}") {
        let _ = Config::parse(&text, "c.yaml");
    }

    #[test]
    fn arbitrary_catalogue_text_never_panics(text in "(components|registries|mirrors|id|images|status|:|-|\\[|\\]|\\{|\\}|,| |\\n|\\*|/|full|partial|[a-z]{1,5}){0,60}") {
        if let Ok(f) = fipsgate::config::yaml::from_str::<CatalogFile>(&text, "cat.yaml") {
            let _ = Catalog::build(vec![("cat.yaml".into(), f)]);
        }
    }
}
