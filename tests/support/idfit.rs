//! Runs the idfit binary the way a user would before loading an image, and reads back the
//! parts of its JSON report the differential test compares: the exit code (0 loads, 1 would
//! not load, 2 error) and the top-level `predicted_error`.

use std::process::Command;

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
