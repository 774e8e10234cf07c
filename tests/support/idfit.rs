//! Runs the idfit binary the way a user would before loading an image, and reads back the
//! parts of its JSON report the differential test compares: the exit code (0 loads, 1 would
//! not load, 2 error) and the top-level `predicted_error`; and runs `idfit fix`, reading
//! back the id table and the layers it planned to rewrite.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use serde_json::Value;

use super::runtimes::{Runtime, Runtimes};

/// What idfit said about one image for one runtime.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub exit_code: Option<i32>,
    pub predicted_error: Option<String>,
    /// Set when stdout was not the expected JSON object.
    pub json_problem: Option<String>,
    pub stderr: String,
}

impl Prediction {
    pub fn verdict(&self) -> &'static str {
        match self.exit_code {
            Some(0) => "loads",
            Some(1) => "fails",
            Some(2) => "error",
            _ => "crashed",
        }
    }
}

/// Runs the idfit binary with `args`, colour off.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idfit"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run the idfit binary")
}

/// `idfit check --runtime R <maps> --format json <transport>:<path>`.
pub fn check(runtimes: &Runtimes, runtime: Runtime, image: &str) -> Prediction {
    let output = Command::new(env!("CARGO_BIN_EXE_idfit"))
        .args(["check", "--runtime", runtime.idfit_name()])
        .args(runtimes.map_arguments(runtime))
        .args(["--format", "json", image])
        .output()
        .expect("run the idfit binary");

    let (predicted_error, json_problem) = read_report(&output.stdout);
    Prediction {
        exit_code: output.status.code(),
        predicted_error,
        json_problem,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    }
}

fn read_report(stdout: &[u8]) -> (Option<String>, Option<String>) {
    let report: Value = match serde_json::from_slice(stdout) {
        Ok(report) => report,
        Err(e) => return (None, Some(format!("stdout is not JSON: {e}"))),
    };
    match report.get("predicted_error") {
        Some(Value::String(text)) => (Some(text.clone()), None),
        Some(Value::Null) => (None, None),
        Some(other) => (None, Some(format!("predicted_error is {other}"))),
        None => (None, Some("no predicted_error field".to_string())),
    }
}

/// What `idfit fix --format json` did.
#[derive(Debug, Clone)]
pub struct Fixed {
    pub exit_code: Option<i32>,
    /// The JSON report, when stdout held one.
    pub report: Option<Value>,
    pub stderr: String,
}

impl Fixed {
    /// One side (`"uids"` or `"gids"`) of the id table the fix applied.
    pub fn table(&self, side: &str) -> BTreeMap<i64, i64> {
        let entries = self
            .report
            .as_ref()
            .and_then(|r| r["plan"]["table"][side].as_object())
            .unwrap_or_else(|| panic!("the fix report has no plan.table.{side}: {self:?}"));
        entries
            .iter()
            .map(|(from, to)| {
                let from = from.parse().expect("table keys are ids");
                (from, to.as_i64().expect("table values are ids"))
            })
            .collect()
    }

    /// Which layers of the first image the plan rewrote, bottom first.
    pub fn rewritten_layers(&self) -> Vec<bool> {
        let report = self.report.as_ref().expect("the fix printed a report");
        let layers = report["plan"]["images"][0]["layers"]
            .as_array()
            .expect("the plan lists the layers");
        layers
            .iter()
            .map(|l| {
                l["rewrite"]
                    .as_bool()
                    .expect("each layer says if it is rewritten")
            })
            .collect()
    }
}

/// `idfit fix --runtime strict <maps> --format json SOURCE DESTINATION`.
pub fn fix(maps: &[String], source: &str, destination: &str) -> Fixed {
    let output = Command::new(env!("CARGO_BIN_EXE_idfit"))
        .args(["fix", "--runtime", "strict"])
        .args(maps)
        .args(["--format", "json", source, destination])
        .output()
        .expect("run the idfit binary");
    Fixed {
        exit_code: output.status.code(),
        report: serde_json::from_slice(&output.stdout).ok(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    }
}

/// `idfit check --runtime strict <maps> IMAGE`: the exit code and the text report.
pub fn check_strict(maps: &[String], image: &str) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_idfit"))
        .args(["check", "--runtime", "strict"])
        .args(maps)
        .arg(image)
        .output()
        .expect("run the idfit binary");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}
