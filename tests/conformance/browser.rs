//! A publisher's page in a real browser: headless Chromium, driven over
//! WebDriver (chromedriver), loads the display service's demo page, which
//! frames one ad. The page must show the creative, record exactly one
//! impression, take a click to the landing page, and charge the
//! advertiser's wallet once. A screenshot of the page is saved to
//! `target/test-artifacts/`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use harness::conformance;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::campaigns::{ads_post, campaign};
use super::display::{CREATIVE_PNG, ad_from, billing_with, upload};
use super::user;

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver; scripts/test installs it)");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not start");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,650"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// A landing page on its own port: answers every request with a page.
async fn landing_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let body = "<!doctype html><title>Boots shop</title><h1 id=\"landed\">Thanks for visiting</h1>";
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(res.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/boots")
}

fn artifact(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("WALLETCTL_TEST_ARTIFACTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

conformance!(
    a_publisher_page_shows_the_ad_and_a_click_is_charged_once,
    |env| {
        let app = env.spawn().await;
        let landing = landing_page().await;
        let u = user();
        let id = format!("web-{u}");
        app.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        let mut body = campaign(&id, &u, 1_000);
        body["creative"]["landing_url"] = json!(landing);
        let (s, _, _) = ads_post(&app, "/campaigns", body).await;
        assert_eq!(s, 201);
        let (s, up) = upload(&app, &id, "image/png", CREATIVE_PNG.to_vec()).await;
        assert_eq!(s, 200, "{up}");
        // The display service holds the campaign with its image.
        let query = format!("slot=demo&advertiser={u}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !ad_from(&app, &query).await["creative"]["asset_url"]
            .as_str()
            .unwrap()
            .contains("/assets/")
        {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // That probe was an ad decision, not an impression: nothing recorded.

        let driver = driver().await;
        let web = browser(&driver).await;
        web.goto(&format!("{}/demo?{query}", app.display))
            .await
            .unwrap();
        let frame = web.wait().for_element(Locator::Id("slot")).await.unwrap();
        frame.enter_frame().await.unwrap();
        let title = web.wait().for_element(Locator::Id("title")).await.unwrap();
        assert_eq!(title.text().await.unwrap(), "Boots");
        // The creative is the uploaded image, loaded and drawn at its size.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let size = web
            .execute(
                "const i = document.getElementById('creative'); return [i.complete, i.naturalWidth, i.naturalHeight];",
                vec![],
            )
            .await
            .unwrap();
            if size == json!([true, 240, 120]) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "creative not shown: {size}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        web.enter_parent_frame().await.unwrap();
        let shot = web.screenshot().await.unwrap();
        let path = artifact(&format!("publisher-page-{:?}.png", env.mode).to_lowercase());
        std::fs::write(&path, &shot).unwrap();
        eprintln!("screenshot: {}", path.display());

        // Exactly one impression.
        let billing = billing_with(&app, &id, 1).await;
        assert_eq!(billing["events"][0]["kind"], "impression");
        tokio::time::sleep(Duration::from_millis(500)).await;
        billing_with(&app, &id, 1).await;

        // A click lands on the landing page, in the top window.
        frame.enter_frame().await.unwrap();
        web.find(Locator::Id("ad"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        web.enter_parent_frame().await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while web.current_url().await.unwrap().as_str() != landing {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never landed: {}",
                web.current_url().await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let landed = web.wait().for_element(Locator::Id("landed")).await.unwrap();
        assert_eq!(landed.text().await.unwrap(), "Thanks for visiting");
        web.close().await.unwrap();

        // Charged once: one click at its CPC, one impression free.
        let billing = billing_with(&app, &id, 2).await;
        let kinds: Vec<&str> = billing["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["impression", "click"]);
        assert_eq!(billing["totals"]["spent"], 1_000);
        assert_eq!(app.balance(&u).await, 9_000);
        let (_, h) = app
            .get(&format!("/wallet/{u}/history?consistency=strong"))
            .await;
        let charges = h["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "ad_charge")
            .count();
        assert_eq!(charges, 1);
        app.stop().await;
    }
);
