//! SARIF 2.1.0 output (OASIS Static Analysis Results Interchange Format), so that CI systems
//! with a code-scanning view can show findings. Each finding is a result located at the
//! entry's path inside its layer.

use serde_json::{Value, json};

use idfit::check::report::{Finding, Report};

const RULE_OWNER: &str = "IDFIT001";
const RULE_XATTR: &str = "IDFIT002";

pub fn to_value(report: &Report) -> Value {
    let results: Vec<Value> = report
        .platforms
        .iter()
        .flat_map(|image| {
            let errors = image
                .findings
                .iter()
                .map(|f| result(f, "error", &image.platform));
            let warnings = image
                .warnings
                .iter()
                .map(|f| result(f, "warning", &image.platform));
            errors.chain(warnings).collect::<Vec<_>>()
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "idfit",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": [
                    {"id": RULE_OWNER, "name": "OwnerOutsideIdMap",
                     "shortDescription": {"text": "A layer entry is owned by an id the user namespace cannot map"}},
                    {"id": RULE_XATTR, "name": "XattrIdOutsideIdMap",
                     "shortDescription": {"text": "An ACL or file capability names an id the user namespace cannot map"}},
                ],
            }},
            "results": results,
        }],
    })
}

fn result(finding: &Finding, level: &str, platform: &str) -> Value {
    let rule = if finding.xattr.is_some() {
        RULE_XATTR
    } else {
        RULE_OWNER
    };
    let runtimes: Vec<&str> = finding.runtimes.iter().map(|r| r.name()).collect();
    let text = format!(
        "{} is owned by {}:{} in layer {} ({}); breaks {}",
        finding.path,
        finding.uid,
        finding.gid,
        finding.layer_index,
        platform,
        runtimes.join(", ")
    );
    json!({
        "ruleId": rule,
        "level": level,
        "message": {"text": text},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": finding.path.trim_start_matches('/')}},
            "logicalLocations": [{"name": finding.layer_digest.to_string(), "kind": "module"}],
        }],
        "properties": serde_json::to_value(finding).unwrap_or(Value::Null),
    })
}
