//! The harness for end-to-end tests: the real server on the release build of the
//! app, and headless Chromium driven through ChromeDriver.

use std::fmt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use backend::{Application, Config};
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// How long any wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The workspace's top folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target folder (screenshots go under it).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// The Intake server on 127.0.0.1, port chosen by the OS, fresh data folder,
/// serving the built app in `dist/`.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// An admin token, for what the test reads behind the pages (`/fhir`).
    pub token: String,
    data: TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Starts it. Panics with what to do if the app has not been built.
    pub async fn start() -> Self {
        let dist = workspace_root().join("dist");
        assert!(
            dist.join("index.html").is_file(),
            "dist/ is not built: run `cargo xtask test`, or `cargo xtask build-frontend` first"
        );
        let data = tempfile::tempdir().expect("temp dir");
        let config = Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            data: data.path().to_owned(),
            dist,
            max_body_bytes: 256 * 1024,
            matching: Default::default(),
            delivery: Default::default(),
            emr: Default::default(),
            guard: Default::default(),
            public_url: None,
        };
        let app = Application::build(&config).await.expect("server starts");
        let base = format!("http://{}", app.local_addr().expect("bound"));
        let token = backend::auth::tokens::create(
            app.db(),
            std::time::SystemTime::now(),
            "browser-tests",
            backend::auth::Role::Admin,
        )
        .await
        .expect("an admin token");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            base,
            token,
            data,
            stop: Some(stop),
        }
    }

    /// Adds a staff account as `intake user add` does, and returns its password.
    pub async fn add_user(&self, username: &str, role: backend::auth::Role) -> String {
        let db = backend::db::open(self.data.path()).await.expect("database");
        let name = backend::auth::Username::parse(username).expect("a username");
        let password = backend::auth::users::add(&db, std::time::SystemTime::now(), &name, role)
            .await
            .expect("user added");
        db.close().await;
        password
    }

    /// A bearer token as `intake token create --may-link` makes: its intakes
    /// prove who the patient is (an EMR's own integration), so a matched chart
    /// is linked rather than proposed (issue 21).
    pub async fn linking_token(&self, name: &str, role: backend::auth::Role) -> String {
        let db = backend::db::open(self.data.path()).await.expect("database");
        let token =
            backend::auth::tokens::create_linking(&db, std::time::SystemTime::now(), name, role)
                .await
                .expect("token created");
        db.close().await;
        token
    }

    /// A bearer token as `intake token create` makes (role `system` or `admin`).
    pub async fn token(&self, name: &str, role: backend::auth::Role) -> String {
        let db = backend::db::open(self.data.path()).await.expect("database");
        let token = backend::auth::tokens::create(&db, std::time::SystemTime::now(), name, role)
            .await
            .expect("token created");
        db.close().await;
        token
    }

    /// Stores a Questionnaire as `intake import` does, and returns its id.
    pub async fn import(&self, id: &str, json: &str) -> String {
        let db = backend::db::open(self.data.path()).await.expect("database");
        let value: Value = serde_json::from_str(json).expect("JSON");
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_owned();
        backend::questionnaires::save(&db, &backend::clock::SystemClock, &id, value)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        db.close().await;
        id
    }
}

impl Server {
    /// Registers a kiosk as `intake kiosk add` does (its idle and warning
    /// seconds given), and returns its one-time enrolment code.
    pub async fn add_kiosk(&self, name: &str, forms: &[&str], idle: u32, warn: u32) -> String {
        let db = backend::db::open(self.data.path()).await.expect("database");
        let new = backend::kiosk::NewKiosk {
            name: name.to_owned(),
            forms: forms.iter().map(|f| (*f).to_owned()).collect(),
            idle_seconds: idle,
            warn_seconds: warn,
        };
        let added = backend::kiosk::add(
            &db,
            std::time::SystemTime::now(),
            &new,
            backend::auth::command_line_agent(),
        )
        .await
        .expect("kiosk added");
        db.close().await;
        added.code
    }
}

/// The fixture loader the backend's tests use too (see its module comment).
#[path = "../../backend/tests/common/fixture_files.rs"]
mod fixture_files;

/// The team's real-world Questionnaires, as (id made from the file name, JSON).
pub fn fixture_questionnaires() -> Vec<(String, String)> {
    fixture_files::questionnaire_fixtures()
        .into_iter()
        .map(|(stem, json)| (stem.replace('_', "-").chars().take(64).collect(), json))
        .collect()
}

impl Server {
    /// An admin bearer token named `name`, as `intake token create --role admin`
    /// prints it: for arranging what a journey starts from over the API.
    pub async fn admin_token(&self, name: &str) -> String {
        let db = backend::db::open(self.data.path()).await.expect("database");
        let token = backend::auth::tokens::create(
            &db,
            std::time::SystemTime::now(),
            name,
            backend::auth::Role::Admin,
        )
        .await
        .expect("token");
        db.close().await;
        token
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Headless Chromium at phone size, through a ChromeDriver of its own.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

/// A phone's viewport (CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);
/// A desktop's (staff screens).
pub const DESKTOP: (u32, u32) = (1280, 900);
/// A tablet's, upright (staff screens).
pub const TABLET: (u32, u32) = (820, 1180);

impl Browser {
    /// Starts ChromeDriver on a free loopback port, in a process group of its own,
    /// and opens a session at phone size.
    pub async fn start() -> Self {
        Self::start_sized(PHONE).await
    }

    /// The same, with a screen of `size` CSS pixels (a desktop, a tablet).
    pub async fn start_sized(size: (u32, u32)) -> Self {
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromedriver).is_file() && Path::new(&chromium).is_file(),
            "Chromium or ChromeDriver missing: `cargo xtask test` installs them"
        );
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: killing the group also ends the Chromium it starts.
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("temp dir");
        let url = format!("http://127.0.0.1:{port}");
        wait_until_listening(port).await;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // Desktop Chromium will not make a window narrower than 500 px;
                // emulating the phone's screen gives its real viewport.
                "mobileEmulation": {
                    "deviceMetrics": { "width": size.0, "height": size.1, "pixelRatio": 2.0 }
                }
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a WebDriver session");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens `url` and waits for the app to have rendered `css`.
    pub async fn open(&self, url: &str, css: &str) {
        self.client.goto(url).await.expect("navigates");
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear on {url}: {e}"));
    }

    /// Opens `/kiosk` on `base`, enrols this browser with `code` as staff do, and
    /// waits for the kiosk to show `ready`.
    pub async fn enrol_kiosk(&self, base: &str, code: &str, ready: &str) {
        self.open(&format!("{base}/kiosk"), "#kiosk-code").await;
        self.type_into("#kiosk-code", code).await;
        self.click("#kiosk-enrol button[type=submit]").await;
        self.open_existing(ready).await;
    }

    /// Waits for `css` to appear on the page already open.
    pub async fn open_existing(&self, css: &str) {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"));
    }

    /// Signs `username` in through the staff sign-in form on the page already
    /// open, and waits until the header says who is signed in.
    pub async fn staff_sign_in(&self, username: &str, password: &str) {
        self.open_existing("#signin").await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("#signin button[type=submit]").await;
        self.wait_for_text("#signed-in-as", |t| t.contains(username))
            .await;
    }

    /// Types into the element.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .expect(css)
            .send_keys(text)
            .await
            .expect("types");
    }

    /// Clicks the element.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .expect(css)
            .click()
            .await
            .expect("clicks");
    }

    /// The element's text now.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .expect(css)
            .text()
            .await
            .expect("text")
    }

    /// The element's attribute now.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .expect(css)
            .attr(name)
            .await
            .expect("attr")
    }

    /// Waits until the element's text satisfies `ok`, and returns it.
    pub async fn wait_for_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if ok(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css}: text still {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` until it returns something other than null, and returns that.
    pub async fn wait_for_js(&self, script: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.js(script).await;
            if !value.is_null() {
                return value;
            }
            assert!(Instant::now() < deadline, "script still null: {script}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs JavaScript in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("script runs")
    }

    /// The paths of every request the page has made to `/api/` or `/fhir/`.
    pub async fn api_requests(&self) -> Vec<String> {
        let value = self
            .js(
                "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)
                   .filter(p => p.startsWith('/api/') || p.startsWith('/fhir/'));",
            )
            .await;
        serde_json::from_value(value).expect("a list of paths")
    }

    /// From now on, keeps a copy of every request the page makes and of the answer
    /// it gets, for [`Browser::sent`]. Lasts until the page is left.
    pub async fn record_requests(&self) {
        // The app's code calls the global `fetch` when it sends; wrapping it sees
        // exactly what goes over the wire.
        self.js("if (window.__intakeSent) return;
             window.__intakeSent = [];
             const original = window.fetch;
             window.fetch = async (input, init) => {
                 const request = new Request(input, init);
                 const body = await request.clone().text();
                 const response = await original(request);
                 const answer = await response.clone().text();
                 window.__intakeSent.push({
                     path: new URL(request.url).pathname, method: request.method,
                     status: response.status, request: body, response: answer,
                 });
                 return response;
             };")
            .await;
    }

    /// What the page has sent since [`Browser::record_requests`], oldest first.
    pub async fn sent(&self) -> Vec<Sent> {
        let recorded = self.js("return window.__intakeSent || [];").await;
        let json = |text: &Value| serde_json::from_str(text.as_str().unwrap_or_default()).ok();
        recorded
            .as_array()
            .expect("a list of requests")
            .iter()
            .map(|r| Sent {
                method: r["method"].as_str().unwrap_or_default().to_owned(),
                path: r["path"].as_str().unwrap_or_default().to_owned(),
                status: r["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(0),
                request: json(&r["request"]),
                response: json(&r["response"]),
            })
            .collect()
    }

    /// Saves what the phone's screen shows as `target/screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot saved");
    }

    /// Scrolls the element to the middle of the screen.
    pub async fn scroll_to(&self, css: &str) {
        let script =
            format!("document.querySelector({css:?}).scrollIntoView({{block: 'center'}});");
        self.js(&script).await;
    }

    /// Presses each key in turn on whatever has focus, through WebDriver's key
    /// actions: what a keyboard does, with no click and no script.
    pub async fn press(&self, keys: &[Key]) {
        let mut actions = KeyActions::new("keyboard".to_owned());
        for key in keys {
            let key = char::from(*key);
            actions = actions
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client
            .perform_actions(actions)
            .await
            .expect("keys pressed");
    }

    /// Shift-Tab: focus back to the previous control.
    pub async fn press_shift_tab(&self) {
        let (shift, tab) = (char::from(Key::Shift), char::from(Key::Tab));
        let actions = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: shift })
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab })
            .then(KeyAction::Up { value: shift });
        self.client
            .perform_actions(actions)
            .await
            .expect("keys pressed");
    }

    /// Types `text` on whatever has focus, key by key.
    pub async fn type_keys(&self, text: &str) {
        let mut actions = KeyActions::new("keyboard".to_owned());
        for c in text.chars() {
            actions = actions
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client
            .perform_actions(actions)
            .await
            .expect("keys typed");
    }

    /// The id of the element that has focus (empty if it has none).
    pub async fn focused_id(&self) -> String {
        self.js("return document.activeElement ? document.activeElement.id : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs axe-core's WCAG 2.1 A and AA rules on the page as it is now, and
    /// returns what breaks them.
    ///
    /// The script goes in through WebDriver, which runs it in the page whatever the
    /// page's Content-Security-Policy says (the app's forbids inline and foreign
    /// scripts); axe itself needs no `eval`.
    pub async fn axe(&self) -> Vec<AxeViolation> {
        if self.js("return typeof window.axe;").await != "object" {
            self.js(axe_core_source()).await;
            assert_eq!(
                self.js("return typeof window.axe;").await,
                "object",
                "axe-core did not load into the page"
            );
        }
        let found = self
            .client
            .execute(
                "return axe.run(document, {
                     runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                     resultTypes: ['violations'],
                 }).then(r => r.violations.map(v => ({
                     id: v.id, impact: v.impact || '', help: v.help, helpUrl: v.helpUrl,
                     nodes: v.nodes.map(n => ({
                         target: n.target.flat().join(' '), html: n.html,
                         failure: n.failureSummary || '',
                     })),
                 })));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        let str_of = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
        found
            .as_array()
            .expect("a list of violations")
            .iter()
            .map(|v| AxeViolation {
                id: str_of(v, "id"),
                impact: str_of(v, "impact"),
                help: str_of(v, "help"),
                help_url: str_of(v, "helpUrl"),
                nodes: v["nodes"]
                    .as_array()
                    .map(|nodes| {
                        nodes
                            .iter()
                            .map(|n| AxeNode {
                                target: str_of(n, "target"),
                                html: str_of(n, "html"),
                                failure: str_of(n, "failure"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Ends the session and ChromeDriver.
    pub async fn close(self) {
        // Drop kills the process group whether or not the session closed cleanly.
        let _ = self.client.clone().close().await;
    }
}

/// A request the page made and the answer it got, as recorded by
/// [`Browser::record_requests`].
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    /// `GET`, `POST`...
    pub method: String,
    /// The URL's path.
    pub path: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// The body sent, if it was JSON.
    pub request: Option<Value>,
    /// The answer's body, if it was JSON.
    pub response: Option<Value>,
}

/// Where `cargo xtask setup --browser` installs axe-core's browser script
/// (`AXE_CORE` names another).
pub fn axe_core_script() -> PathBuf {
    if let Some(path) = std::env::var_os("AXE_CORE") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
                .join(".cache")
        },
        PathBuf::from,
    );
    cache.join("intake/tools/axe-core/node_modules/axe-core/axe.min.js")
}

fn axe_core_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = axe_core_script();
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: `cargo xtask setup --browser` installs axe-core",
                path.display()
            )
        })
    })
}

/// A rule of axe-core that the page breaks, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxeViolation {
    /// The rule, e.g. `label` or `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks for, in a sentence.
    pub help: String,
    /// Deque's page on the rule.
    pub help_url: String,
    /// The elements that break it.
    pub nodes: Vec<AxeNode>,
}

/// One element that breaks an axe-core rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxeNode {
    /// A CSS selector for it.
    pub target: String,
    /// Its opening HTML, shortened by axe.
    pub html: String,
    /// What to fix, in axe's words.
    pub failure: String,
}

impl fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[{}] {} ({}; {})",
            self.impact, self.id, self.help, self.help_url
        )?;
        // The same advice for every element is said once, after them.
        let same = self.nodes.windows(2).all(|w| w[0].failure == w[1].failure);
        for node in &self.nodes {
            writeln!(f, "    at {}: {}", node.target, node.html)?;
            if !same {
                for line in node.failure.lines() {
                    writeln!(f, "        {line}")?;
                }
            }
        }
        if let (true, Some(node)) = (same, self.nodes.first()) {
            for line in node.failure.lines() {
                writeln!(f, "      {line}")?;
            }
        }
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

async fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start listening on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
