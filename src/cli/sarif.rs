//! SARIF 2.1.0 output (OASIS Static Analysis Results Interchange Format), so that CI systems
//! with a code-scanning view can show findings. Each finding is a result located at the
//! entry's path inside its layer.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
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
    let runtimes: Vec<&str> = finding.runtimes.iter().map(|r| r.name()).collect();
    // A warning is for runtimes that load the layer but give the wrong owner inside.
    let effect = if level == "warning" {
        "misleads"
    } else {
        "breaks"
    };
    let (rule, what) = match &finding.xattr {
        Some(xattr) => (RULE_XATTR, format!("{} names id {}", xattr.name, xattr.id)),
        None => (
            RULE_OWNER,
            format!("is owned by {}:{}", finding.uid, finding.gid),
        ),
    };
    let text = format!(
        "{} {what} in layer {} ({platform}); {effect} {}",
        finding.path,
        finding.layer_index,
        runtimes.join(", ")
    );
    json!({
        "ruleId": rule,
        "level": level,
        "message": {"text": text},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": uri(&finding.path)}},
            "logicalLocations": [{"name": finding.layer_digest.to_string(), "kind": "module"}],
        }],
        "properties": serde_json::to_value(finding).unwrap_or(Value::Null),
    })
}

/// Bytes a path keeps as they are in a URI reference: RFC 3986's unreserved characters, the
/// sub-delimiters, `@` and the `/` between segments. Everything else is percent-encoded,
/// `:` too, which in a first segment would read as a scheme.
const PATH_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

/// A path of the image's filesystem as a relative URI reference, as SARIF wants it.
fn uri(path: &str) -> String {
    utf8_percent_encode(path.trim_start_matches('/'), PATH_SAFE).to_string()
}

#[cfg(test)]
mod tests {
    use super::uri;

    #[test]
    fn paths_become_relative_uri_references() {
        assert_eq!(uri("/usr/lib/x.so"), "usr/lib/x.so");
        assert_eq!(uri("/a b/c#d?e%f"), "a%20b/c%23d%3Fe%25f");
        assert_eq!(uri("/c:d/é"), "c%3Ad/%C3%A9");
    }
}
