//! The embedded seed pack: the DEV-0228 / DEV-0056 detections, in the binary.
//!
//! Six Sigma rules and one IOC list, written from Microsoft's 2021 reports
//! (see `engine/rules/seed/README.md`). They load by default, so `trawl`
//! detects that intrusion with no rule files at hand; `--no-default-rules`
//! turns them off. Their order here (file-name order) is their load order.
//!
//! ```
//! let load = trawl_engine::seed::load();
//! assert_eq!(load.rules.len(), 7);
//! assert!(load.unsupported.is_empty());
//! assert_eq!(load.rules[6].id, "6ca70d8a-f804-441f-9e4a-faa700ca48f4");
//! ```

use crate::load::{ioc_list, RuleLoad};
use crate::sigma;

/// The Sigma rules, by file name.
pub const SIGMA_RULES: &[(&str, &str)] = &[
    (
        "01-paexec-remote-execution.yml",
        include_str!("../rules/seed/01-paexec-remote-execution.yml"),
    ),
    (
        "02-tapi-folder-file-staged.yml",
        include_str!("../rules/seed/02-tapi-folder-file-staged.yml"),
    ),
    (
        "03-tapi-folder-process.yml",
        include_str!("../rules/seed/03-tapi-folder-process.yml"),
    ),
    (
        "04-dev-0056-powershell.yml",
        include_str!("../rules/seed/04-dev-0056-powershell.yml"),
    ),
    (
        "05-procdump-lsass.yml",
        include_str!("../rules/seed/05-procdump-lsass.yml"),
    ),
    (
        "06-svchost-runtimebroker-masquerade.yml",
        include_str!("../rules/seed/06-svchost-runtimebroker-masquerade.yml"),
    ),
];

/// The IOC list: the report's SHA-256 digests.
pub const IOC_LIST: (&str, &str) = ("dev-0228.iocs", include_str!("../rules/seed/dev-0228.iocs"));

/// The rule id of the seed IOC list, fixed so alerts keep it across versions.
pub const IOC_RULE_ID: &str = "6ca70d8a-f804-441f-9e4a-faa700ca48f4";

/// Parses the seed pack. Its rules are tested to load cleanly, so
/// `unsupported` is empty unless the pack itself was broken.
pub fn load() -> RuleLoad {
    let mut load = RuleLoad::default();
    for (name, text) in SIGMA_RULES {
        let s = sigma::parse_str(text, &format!("embedded:seed/{name}"));
        load.rules.extend(s.rules);
        load.unsupported.extend(s.unsupported);
        load.files += 1;
    }
    let (rule, problems) = ioc_list(
        IOC_LIST.1,
        &format!("embedded:seed/{}", IOC_LIST.0),
        IOC_RULE_ID.to_owned(),
    );
    load.rules.push(rule);
    load.problems.extend(problems);
    load.files += 1;
    load
}

#[cfg(test)]
mod tests {
    #[test]
    fn seed_pack_ids_are_the_published_ones() {
        let load = super::load();
        let ids: Vec<&str> = load.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "39b030ec-e026-481d-ada1-9f8439d97552",
                "a254d0dd-22b0-4a52-8b06-3db829450fd2",
                "690e5397-2376-41f9-8159-649102f6f86b",
                "4f044caa-5e8c-4fda-bc60-16553238ee38",
                "a2cb4298-b874-4550-a7ec-f76e28c095d8",
                "b6db897c-89fc-461c-a71b-dcb6fd4353cc",
                "6ca70d8a-f804-441f-9e4a-faa700ca48f4",
            ]
        );
        assert!(load.unsupported.is_empty(), "{:?}", load.unsupported);
        assert!(load.problems.is_empty(), "{:?}", load.problems);
        match &load.rules[6].body {
            crate::rule::RuleBody::Ioc(set) => assert_eq!(set.len(), 7),
            other => panic!("the IOC rule is {other:?}"),
        }
    }
}
