//! `cargo xtask bench forms`: how fast a large real form becomes usable in headless
//! Chromium at phone size, and how fast typing in it updates. Prints figures;
//! asserts nothing.
//!
//! - load to interactive: from the WebAssembly module starting (`intake:wasm-start`)
//!   to the form drawn and taking input (`intake:form-interactive`), for
//!   `smartforms__715.R4.json` (187 items), over fresh page loads;
//! - typing: one keystroke's `input` event until the app's reactive updates have
//!   run (the next task), over many keystrokes in a text field of that form.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use fantoccini::wd::WebDriverCompatibleCommand;
use tests::{Browser, Server, fixture_questionnaires};

const LOADS: usize = 15;
const KEYSTROKES: usize = 60;

#[tokio::main]
async fn main() {
    let server = Server::start().await;
    let (name, json) = fixture_questionnaires()
        .into_iter()
        .find(|(name, _)| name.contains("715"))
        .expect("smartforms__715.R4.json in ../shared/fixtures/questionnaires");
    let id = server.import(&name, &json).await;
    let url = format!("{}/preview/{id}", server.base);
    println!(
        "forms benchmark: {name} ({} items), headless Chromium, 390x844",
        count_items(&json)
    );
    // 1: this machine as it is. 4: Chrome's CPU throttling at the rate Lighthouse
    // uses for its mobile profile, standing in for a mid-range phone.
    for rate in [1, 4] {
        let browser = Browser::start().await;
        browser
            .client
            .issue_cmd(Cdp {
                cmd: "Emulation.setCPUThrottlingRate",
                params: serde_json::json!({"rate": rate}),
            })
            .await
            .unwrap();
        println!("  CPU slowed {rate}x:");
        measure(&browser, &url).await;
        browser.close().await;
    }
}

/// A Chrome DevTools Protocol command, sent through ChromeDriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

async fn measure(browser: &Browser, url: &str) {
    let mut loads = Vec::with_capacity(LOADS);
    for _ in 0..LOADS {
        browser.open(url, "form.questionnaire").await;
        let value = browser
            .wait_for_js(
                "const s = performance.getEntriesByName('intake:wasm-start')[0];
                 const i = performance.getEntriesByName('intake:form-interactive')[0];
                 return s && i ? i.startTime - s.startTime : null;",
            )
            .await;
        loads.push(value.as_f64().unwrap());
    }

    let typing = browser
        .client
        .execute_async(
            "const [count, done] = arguments;
             // The first text box on screen; in a tabbed form, on the first tab
             // that has one.
             const find = () => [...document.querySelectorAll(
                     'form.questionnaire input[type=text], form.questionnaire textarea')]
                 .find(i => i.offsetParent !== null && !i.readOnly);
             let input = find();
             for (const tab of document.querySelectorAll('[role=tab]')) {
                 if (input) break;
                 tab.click();
                 await new Promise(r => setTimeout(r, 0));
                 input = find();
             }
             const times = [];
             for (let k = 0; k < count; k++) {
                 const t0 = performance.now();
                 input.value += 'a';
                 input.dispatchEvent(new Event('input', {bubbles: true}));
                 await new Promise(r => setTimeout(r, 0));
                 times.push(performance.now() - t0);
             }
             done(times);",
            vec![serde_json::json!(KEYSTROKES)],
        )
        .await
        .unwrap();
    let mut typing: Vec<f64> = serde_json::from_value(typing).unwrap();
    report("load to interactive (ms)", &mut loads);
    report("typing, one keystroke (ms)", &mut typing);
}

fn count_items(json: &str) -> usize {
    fn walk(items: &serde_json::Value) -> usize {
        items
            .as_array()
            .map_or(0, |a| a.iter().map(|i| 1 + walk(&i["item"])).sum())
    }
    walk(&serde_json::from_str::<serde_json::Value>(json).unwrap()["item"])
}

fn report(what: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "    {what}: median {:.1}, p90 {:.1}, p99 {:.1}, max {:.1} over {} samples",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        samples.len()
    );
}
