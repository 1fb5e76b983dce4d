//! Real headless Chromium (Debian's `chromium` and `chromium-driver`) driven over WebDriver
//! (`fantoccini`), for the staff pages' tests. `Browser::start` runs `chromedriver` on a free port
//! and opens a fresh headless session with the flags this closed network needs; dropping the
//! browser ends the session and the driver. Screenshots go to `target/screenshots/` (and to
//! `docs/screenshots/` when `HOSPITAL_SCREENSHOTS=docs`, to refresh the ones in the docs).

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    pub async fn start() -> Browser {
        // The WebDriver client is built with rustls; this process picks ring, as the server does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            // Its own process group, with the Chromium it starts: `drop` ends them together.
            .process_group(0)
            // On Linux Chromium takes its locale (date and time inputs' format) from LANGUAGE,
            // not `--lang`: the hospital's staff browsers are Chinese.
            .env("LANGUAGE", "zh_CN")
            // The pages' "today" is the browser's: UTC, as on CI, wherever the suite runs.
            .env("TZ", "UTC")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test.sh installs it)");
        let profile = tempfile::tempdir().unwrap();
        let args = serde_json::json!([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--lang=zh-CN",
            "--window-size=1440,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::rustls().expect("rustls").capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("cannot start a Chromium session: {e}"),
            }
        };
        Browser { client, driver, _profile: profile }
    }

    /// Waits for the element matching `css` (up to 15 s).
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?}: {e}"))
    }

    /// Waits until the page's text contains `text` (up to 15 s); the page's text otherwise.
    pub async fn wait_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let body = self.client.find(Locator::Css("body")).await.unwrap().text().await.unwrap_or_default();
            if body.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "the page never showed {text:?}; it shows:\n{body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the page until `script` returns `want`, for up to 30 s (a full suite's Chromium
    /// under load has taken more than 10 s to load a thumbnail).
    pub async fn wait_js(&self, script: &str, want: serde_json::Value) {
        for _ in 0..300 {
            if self.client.execute(script, vec![]).await.unwrap() == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{script} never gave {want}");
    }

    /// Waits until no element matches `css` (up to 15 s); `what` names it in the failure.
    pub async fn wait_gone(&self, css: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.client.find_all(Locator::Css(css)).await.unwrap().is_empty() {
            assert!(Instant::now() < deadline, "{what} still on the page after 15 s ({css})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.find(css).await;
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Opens `url` (a staff page: `/admin...` or `/console`) and signs in on its form as `username`.
    pub async fn sign_in(&self, url: &str, username: &str, password: &str) {
        self.client.goto(url).await.unwrap();
        self.fill("input[name=username]", username).await;
        self.fill("input[name=password]", password).await;
        self.click("button[type=submit]").await;
    }

    /// Saves a PNG of the window as `name`.png and returns its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        if std::env::var("HOSPITAL_SCREENSHOTS").as_deref() == Ok("docs") {
            let docs = root.join("docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
        }
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium is chromedriver's child: killing chromedriver alone (a test that panicked, or
        // ended without a WebDriver quit) left it running, a browser per such test, for good.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-s", "KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_staff_pages_load_in_chromium_and_log_in() {
    let s = crate::harness::TestServer::start(crate::harness::Opts::new()).await;
    let b = Browser::start().await;
    for (page, title) in [("/console", "客服工作台"), ("/admin", "医院管理后台")] {
        b.client.goto(&s.url(page)).await.unwrap();
        b.wait_text(title).await;
        b.fill("input[name=username]", "admin").await;
        b.fill("input[name=password]", "wrong-password").await;
        b.click("button[type=submit]").await;
        b.wait_text("用户名或密码错误").await;
        b.fill("input[name=password]", "admin-demo-2026").await;
        b.click("button[type=submit]").await;
        b.find("header.topbar").await;
        let shot = b.screenshot(&page[1..]).await;
        assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
        // The login is kept for the tab: the next page starts logged out.
        b.client.execute("sessionStorage.clear()", vec![]).await.unwrap();
    }
    // The strict policy is on the pages: no inline script, nothing from elsewhere.
    let r = s.get("/console", None).await;
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let _ = b.client.clone().close().await;
}
