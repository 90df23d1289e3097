//! The shipped dashboard and alert rules (`docs/monitoring/`): the rules
//! pass `promtool check rules`, and every metric either names is one the
//! services export (found in the code that records it); every exported
//! metric is on the dashboard.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every metric the services record: `counter!("…"`, `gauge!("…"`,
/// `histogram!("…"` in the core and daemon sources, and the series they
/// become (histograms as `_bucket`, `_sum` and `_count`).
fn exported() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut names = BTreeSet::new();
    let mut series = BTreeSet::new();
    let mut stack = vec![root().join("src"), root().join("daemon/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for kind in ["counter", "gauge", "histogram"] {
                for part in text.split(&format!("{kind}!(")).skip(1) {
                    let Some(rest) = part.trim_start().strip_prefix('"') else {
                        continue;
                    };
                    let name = rest.split('"').next().unwrap().to_owned();
                    if kind == "histogram" {
                        for suffix in ["_bucket", "_sum", "_count"] {
                            series.insert(format!("{name}{suffix}"));
                        }
                    } else {
                        series.insert(name.clone());
                    }
                    names.insert(name);
                }
            }
        }
    }
    (names, series)
}

/// Aggregations and keywords: words in PromQL that are not metrics.
const PROMQL_WORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
];

/// The metric names a PromQL expression reads.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    // Drop label matchers, ranges and strings.
    let mut cleaned = String::new();
    let mut depth = 0usize;
    let mut in_string = false;
    for ch in expr.chars() {
        match ch {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                cleaned.push(' ');
            }
            _ if depth > 0 => {}
            c => cleaned.push(c),
        }
    }
    let chars: Vec<char> = cleaned.chars().collect();
    let mut out = BTreeSet::new();
    let mut in_grouping = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if ["by", "without", "on", "ignoring"].contains(&word.as_str()) {
                in_grouping = true; // the label list that follows
            } else if next == Some(&'(') || PROMQL_WORDS.contains(&word.as_str()) || in_grouping {
                // a function, an operator, or a label in a grouping list
            } else {
                out.insert(word);
            }
        } else {
            if c == ')' {
                in_grouping = false;
            }
            i += 1;
        }
    }
    out
}

fn dashboard_exprs() -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join("docs/monitoring/grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| {
            t["expr"]
                .as_str()
                .expect("an expr")
                .replace("$__rate_interval", "5m")
        })
        .collect()
}

/// The `expr:` of every rule: one line, or the indented block after `expr: |`.
fn rule_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docs/monitoring/alerts.yml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((indent, rest)) = line.split_once("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest != "|" {
            exprs.push(rest.to_owned());
            continue;
        }
        let mut block = String::new();
        for next in &lines[i + 1..] {
            if next.len() - next.trim_start().len() <= indent.len() {
                break;
            }
            block.push_str(next.trim());
            block.push(' ');
        }
        exprs.push(block);
    }
    exprs
}

#[test]
fn the_alert_rules_pass_promtool() {
    let out = std::process::Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(root().join("docs/monitoring/alerts.yml"))
        .output()
        .expect("promtool (Debian's prometheus package; scripts/test installs it)");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_metric_named_is_exported_and_every_export_is_on_the_dashboard() {
    let (names, series) = exported();
    assert!(names.len() > 20, "found the metrics in the code: {names:?}");
    let dashboard: BTreeSet<String> = dashboard_exprs()
        .iter()
        .flat_map(|e| metrics_in(e))
        .collect();
    let rules: BTreeSet<String> = rule_exprs().iter().flat_map(|e| metrics_in(e)).collect();
    assert!(rules.len() > 10, "{rules:?}");
    for m in dashboard.iter().chain(&rules) {
        // `up` is Prometheus's own series for each scrape target.
        assert!(
            series.contains(m) || m == "up",
            "{m} is named in docs/monitoring but no service exports it"
        );
    }
    for name in &names {
        let shown = dashboard.iter().any(|m| {
            m == name
                || m.strip_prefix(name.as_str())
                    .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))
        });
        assert!(shown, "{name} is exported but not on the dashboard");
    }
}

#[test]
fn the_expression_reader_finds_metrics_and_skips_labels_and_functions() {
    let found = metrics_in(
        r#"histogram_quantile(0.99, sum by (le, service) (rate(x_bucket{status=~"5.."}[5m]))) / on (service) y > 0"#,
    );
    assert_eq!(
        found,
        BTreeSet::from(["x_bucket".to_owned(), "y".to_owned()])
    );
}
