//! Compares one runtime's real outcome with idfit's prediction, and prints the per-case
//! table the differential test shows when it fails (or always, with `--nocapture`).

use super::idfit::Prediction;
use super::runtimes::{Outcome, Runtime};

/// One image loaded into one runtime, and what idfit predicted for it.
pub struct Row {
    pub case: String,
    pub runtime: Runtime,
    pub real: Outcome,
    /// `None` when the case is not compared on this runtime.
    pub prediction: Option<Prediction>,
}

impl Row {
    /// Why idfit and the runtime disagree, if they do.
    pub fn mismatch(&self) -> Option<String> {
        let prediction = self.prediction.as_ref()?;
        if let Some(problem) = &prediction.json_problem {
            return Some(format!(
                "idfit output: {problem}; idfit stderr: {}",
                prediction.stderr
            ));
        }

        let expected_code = if self.real.loaded { 0 } else { 1 };
        if prediction.exit_code != Some(expected_code) {
            return Some(format!(
                "idfit exited {:?}, runtime {}; idfit stderr: {}",
                prediction.exit_code,
                self.real_verdict(),
                prediction.stderr
            ));
        }
        self.message_mismatch(prediction)
    }

    fn message_mismatch(&self, prediction: &Prediction) -> Option<String> {
        match (&prediction.predicted_error, self.real.loaded) {
            (None, true) => None,
            (Some(text), true) => Some(format!("runtime loaded but idfit predicts `{text}`")),
            (None, false) => Some("runtime failed but predicted_error is null".to_string()),
            (Some(text), false) if self.real.stderr.contains(text.as_str()) => None,
            (Some(text), false) => {
                Some(format!("predicted `{text}` is not in the runtime's stderr"))
            }
        }
    }

    fn real_verdict(&self) -> &'static str {
        if self.real.loaded { "loads" } else { "fails" }
    }

    fn idfit_verdict(&self) -> &'static str {
        self.prediction.as_ref().map_or("-", Prediction::verdict)
    }
}

/// The table of every row, then the details of each mismatch.
pub fn render(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:width$}  {:10}  {:5}  {:7}  agree\n",
        "case", "runtime", "real", "idfit"
    );
    for row in rows {
        let agree = match (&row.prediction, row.mismatch()) {
            (None, _) => "not compared",
            (Some(_), None) => "yes",
            (Some(_), Some(_)) => "NO",
        };
        out += &format!(
            "{:width$}  {:10}  {:5}  {:7}  {agree}\n",
            row.case,
            row.runtime.idfit_name(),
            row.real_verdict(),
            row.idfit_verdict(),
        );
    }

    for row in rows {
        if let Some(reason) = row.mismatch() {
            out += &format!(
                "\n{} on {}: {reason}\n  runtime stderr: {}\n",
                row.case,
                row.runtime.idfit_name(),
                if row.real.loaded {
                    "(none, it loaded)"
                } else {
                    key_line(&row.real.stderr)
                }
            );
        }
    }
    out
}

/// The line of a runtime's stderr that carries the reason: podman prints one bullet per
/// transport it tried and only the archive's own bullet matters.
fn key_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|line| line.contains("-archive: writing blob"))
        .or_else(|| stderr.lines().last())
        .unwrap_or("")
}
