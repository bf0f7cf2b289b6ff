use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use super::*;
use crate::decode::RAW_STD;

const FINGERPRINT: &str = "SHF+e25zLvC20boxYUsDHmLHWlyQt57LCHls6hSeJjg=";

/// `https://portainer.example.com|portainer.example.com:30776|<FINGERPRINT>|7`, canonical.
const KEY: &str = "aHR0cHM6Ly9wb3J0YWluZXIuZXhhbXBsZS5jb218cG9ydGFpbmVyLmV4YW1wbGUuY29tOjMwNzc2fFNIRitlMjV6THZDMjBib3hZVXNESG1MSFdseVF0NTdMQ0hsczZoU2VKamc9fDc";

/// The same key pointed at a VPC endpoint. 227 characters, so its padded form has the `=` at
/// byte 227, as in the field report behind this crate.
const VPCE_TUNNEL: &str =
    "vpce-0a1b2c3d4e5f67890-abcd1234.vpce-svc-0123456789abcdef0.eu-west-1.vpce.amazonaws.com:30776";

fn encode(text: &str) -> String {
    RAW_STD.encode(text)
}

fn key_with_fields(fields: &str) -> Vec<u8> {
    encode(fields).into_bytes()
}

fn kinds(report: &Report) -> Vec<IssueKind> {
    report.issues().iter().map(|issue| issue.kind).collect()
}

fn parse(input: &str) -> EdgeKey {
    EdgeKey::parse(input.as_bytes()).unwrap()
}

#[test]
fn parses_the_four_fields() {
    let key = parse(KEY);
    assert_eq!(key.portainer_url(), "https://portainer.example.com");
    assert_eq!(key.tunnel_addr(), "portainer.example.com:30776");
    assert_eq!(key.server_fingerprint(), FINGERPRINT);
    assert_eq!(key.endpoint_id(), 7);
    assert!(!key.is_global());
    assert_eq!(key.to_canonical().expose_secret(), KEY);
}

#[test]
fn global_key_has_endpoint_id_zero() {
    let input = key_with_fields(&format!("https://p.example.com|p.example.com:8000|{FINGERPRINT}|0"));
    assert!(EdgeKey::parse(&input).unwrap().is_global());
}

#[test]
fn padded_key_parses_and_encodes_without_padding() {
    let padded = format!("{KEY}=");
    assert!(padded.ends_with('='));
    let key = parse(&padded);
    assert_eq!(key.to_canonical().expose_secret(), KEY);
}

#[test]
fn soft_wrapped_key_parses() {
    let wrapped: String =
        KEY.as_bytes().chunks(40).map(|chunk| std::str::from_utf8(chunk).unwrap()).collect::<Vec<_>>().join("\r\n  \t");
    let key = parse(&format!("  {wrapped}=\n"));
    assert!(key == parse(KEY));
}

#[test]
fn url_safe_alphabet_is_an_error_at_its_original_offset() {
    let mut input = format!(" \n{KEY}").into_bytes();
    input[2 + 10] = b'-';
    let err = EdgeKey::parse(&input).err().unwrap();
    assert_eq!(err, KeyError::UrlSafeAlphabet { offset: 12, byte: b'-' });
    assert_eq!(
        err.to_string(),
        "byte 12: `-` is from the URL-safe base64 alphabet, Portainer keys use the standard one"
    );
}

#[test]
fn other_bad_bytes_are_errors() {
    let input = format!("\"{KEY}\"");
    let err = EdgeKey::parse(input.as_bytes()).err().unwrap();
    assert_eq!(err, KeyError::IllegalByte { offset: 0, byte: b'"' });
    let input = format!("{KEY}={KEY}");
    let err = EdgeKey::parse(input.as_bytes()).err().unwrap();
    assert_eq!(err, KeyError::IllegalByte { offset: KEY.len(), byte: b'=' });
    let err = EdgeKey::parse("é".as_bytes()).err().unwrap();
    assert_eq!(err.to_string(), "byte 0: `\\xc3` is not a base64 character");
}

#[test]
fn empty_and_impossible_length() {
    assert_eq!(EdgeKey::parse(b"").err(), Some(KeyError::Empty));
    assert_eq!(EdgeKey::parse(b" \r\n\t==").err(), Some(KeyError::Empty));
    let truncated = &KEY[..137];
    assert_eq!(EdgeKey::parse(truncated.as_bytes()).err(), Some(KeyError::ImpossibleLength { symbols: 137 }));
}

#[test]
fn decoded_content_errors() {
    let not_utf8 = RAW_STD.encode([0xff, 0xfe, b'|']);
    assert_eq!(EdgeKey::parse(not_utf8.as_bytes()).err(), Some(KeyError::NotUtf8));
    let three = key_with_fields("https://p.example.com|p.example.com:8000|7");
    assert_eq!(EdgeKey::parse(&three).err(), Some(KeyError::FieldCount { found: 3 }));
    let five = key_with_fields("a|b:1|c|7|x");
    assert_eq!(EdgeKey::parse(&five).err(), Some(KeyError::FieldCount { found: 5 }));
    let not_int = key_with_fields("a|b:1|c| 7");
    assert_eq!(EdgeKey::parse(&not_int).err(), Some(KeyError::EndpointIdNotInteger));
}

#[test]
fn endpoint_id_text_survives_reencoding() {
    // Go's Atoi takes `+7`; re-encoding must change the encoding only, never the content.
    let input = key_with_fields("a|b:1|c|+7");
    let key = EdgeKey::parse(&input).unwrap();
    assert_eq!(key.endpoint_id(), 7);
    assert_eq!(key.to_canonical().expose_secret().as_bytes(), input.as_slice());
}

#[test]
fn set_tunnel_rewrites_field_two_only() {
    let key = parse(KEY);
    let moved = key.with_tunnel_addr(VPCE_TUNNEL).unwrap();
    assert_eq!(moved.tunnel_addr(), VPCE_TUNNEL);
    assert_eq!(moved.portainer_url(), key.portainer_url());
    assert_eq!(moved.server_fingerprint(), key.server_fingerprint());
    assert_eq!(moved.endpoint_id(), key.endpoint_id());
    let canonical = moved.to_canonical();
    assert_eq!(canonical.expose_secret().len(), 227);
    assert!(parse(canonical.expose_secret()) == moved);
    assert_ne!(moved.fingerprint(), key.fingerprint());
}

#[test]
fn set_tunnel_rejects_bad_addresses() {
    let key = parse(KEY);
    for (addr, problem) in [
        ("", TunnelAddrProblem::Empty),
        ("https://h:443", TunnelAddrProblem::HasScheme),
        ("h:8000 ", TunnelAddrProblem::Whitespace),
        ("h|x:8000", TunnelAddrProblem::Pipe),
        ("h", TunnelAddrProblem::MissingPort),
        ("h:0", TunnelAddrProblem::PortOutOfRange),
    ] {
        let err = key.with_tunnel_addr(addr).err().unwrap();
        assert_eq!(err, KeyError::InvalidTunnelAddr(problem), "{addr:?}");
    }
}

#[test]
fn fingerprint_is_short_stable_and_ignores_encoding_noise() {
    let fingerprint = parse(KEY).fingerprint();
    assert!(fingerprint.starts_with("sha256:"));
    assert_eq!(fingerprint.len(), "sha256:".len() + 16);
    assert!(fingerprint[7..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(parse(&format!("{KEY}=\n")).fingerprint(), fingerprint);
    assert_eq!(parse(KEY).to_canonical().fingerprint(), fingerprint);
}

#[test]
fn error_messages_never_carry_field_values() {
    let inputs = [
        key_with_fields("https://secret-host.example|secret-host.example:1|SECRETFP|x"),
        key_with_fields("https://secret-host.example|SECRETFP"),
        format!("{KEY}-").into_bytes(),
    ];
    for input in inputs {
        let err = EdgeKey::parse(&input).err().unwrap();
        let shown = format!("{err} {err:?} {}", err.help());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("SECRETFP"), "{shown}");
        assert!(!shown.contains(&KEY[..20]), "{shown}");
    }
    let err = parse(KEY).with_tunnel_addr("secret-host").err().unwrap();
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn canonical_key_has_no_issues() {
    let report = check(KEY.as_bytes());
    assert_eq!(report.issues(), &[]);
    assert!(report.is_valid());
    assert_eq!(report.agent_verdict(), AgentVerdict::Accepts);
    assert_eq!(report.fingerprint(), Some(parse(KEY).fingerprint().as_str()));
}

#[test]
fn one_final_line_break_is_fine() {
    for suffix in ["\n", "\r\n"] {
        let report = check(format!("{KEY}{suffix}").as_bytes());
        assert_eq!(report.issues(), &[], "{suffix:?}");
        assert_eq!(report.agent_verdict(), AgentVerdict::Accepts);
    }
}

#[test]
fn padded_key_is_reported_where_the_agent_fails() {
    let padded = format!("{}=", parse(KEY).with_tunnel_addr(VPCE_TUNNEL).unwrap().to_canonical().expose_secret());
    assert_eq!(padded.len(), 228);
    let report = check(padded.as_bytes());
    assert_eq!(report.issues(), &[Issue { offset: 227, len: 1, kind: IssueKind::Padding, severity: Severity::Error }]);
    let issue = &report.issues()[0];
    assert_eq!(issue.message(), "1 `=` padding byte at the end of the key");
    assert!(issue.help().contains("illegal base64 data at input byte 227"));
    assert!(issue.help().contains("edgeplan edge-key encode"));
    assert_eq!(report.agent_verdict(), AgentVerdict::IllegalBase64 { offset: 227 });
    assert_eq!(report.agent_verdict().agent_error().as_deref(), Some("illegal base64 data at input byte 227"));
    // Lenient reading still identifies the key.
    assert!(report.fingerprint().is_some());
}

#[test]
fn soft_wrap_newline_is_an_error_the_agent_would_skip() {
    let input = format!("{}\n{}", &KEY[..76], &KEY[76..]);
    let report = check(input.as_bytes());
    assert_eq!(kinds(&report), [IssueKind::LineBreak { trailing: false }]);
    assert_eq!(report.issues()[0].offset, 76);
    assert_eq!(report.issues()[0].severity, Severity::Error);
    assert!(report.issues()[0].help().contains("moves between attempts"));
    assert_eq!(report.agent_verdict(), AgentVerdict::Accepts);
}

#[test]
fn space_is_fatal_where_it_is() {
    let input = format!("{} {}", &KEY[..100], &KEY[100..]);
    let report = check(input.as_bytes());
    assert_eq!(kinds(&report), [IssueKind::Whitespace { byte: b' ', trailing: false }]);
    assert_eq!(report.issues()[0].offset, 100);
    assert_eq!(
        report.issues()[0].message(),
        "a space inside the key: the agent fails here with `illegal base64 data at input byte 100`"
    );
    assert_eq!(report.agent_verdict(), AgentVerdict::IllegalBase64 { offset: 100 });
}

#[test]
fn trailing_whitespace_and_extra_line_breaks() {
    let report = check(format!("{KEY} ").as_bytes());
    assert_eq!(kinds(&report), [IssueKind::Whitespace { byte: b' ', trailing: true }]);
    assert_eq!(report.agent_verdict(), AgentVerdict::IllegalBase64 { offset: KEY.len() });

    let report = check(format!("{KEY}\n\n").as_bytes());
    assert_eq!(kinds(&report), [IssueKind::LineBreak { trailing: true }]);
    assert!(report.is_valid(), "a warning only");
}

#[test]
fn url_safe_bytes_are_each_named() {
    let mut input = KEY.as_bytes().to_vec();
    input[5] = b'-';
    input[9] = b'_';
    let report = check(&input);
    assert_eq!(kinds(&report), [IssueKind::UrlSafeAlphabet { byte: b'-' }, IssueKind::UrlSafeAlphabet { byte: b'_' }]);
    assert_eq!(report.issues()[1].offset, 9);
    assert_eq!(report.fingerprint(), None);
    assert_eq!(report.agent_verdict(), AgentVerdict::IllegalBase64 { offset: 5 });
}

#[test]
fn garbage_is_capped() {
    let input = vec![b'!'; 100];
    let report = check(&input);
    assert_eq!(report.issues().len(), 21);
    assert_eq!(report.issues()[20].kind, IssueKind::MoreIllegalBytes { count: 80 });
    assert_eq!(report.issues()[20].offset, 20);
    assert_eq!(report.issues()[20].len, 80);
}

#[test]
fn empty_input() {
    for input in ["", "\n", "  \t"] {
        let report = check(input.as_bytes());
        assert!(kinds(&report).contains(&IssueKind::Empty), "{input:?}");
        assert!(!report.is_valid());
    }
}

#[test]
fn impossible_length_points_at_the_last_character() {
    let report = check(&KEY.as_bytes()[..137]);
    assert_eq!(kinds(&report), [IssueKind::ImpossibleLength { symbols: 137 }]);
    assert_eq!(report.issues()[0].offset, 136);
    assert_eq!(report.agent_verdict(), AgentVerdict::IllegalBase64 { offset: 136 });
}

#[test]
fn non_zero_trailing_bits_are_a_warning() {
    // 139 characters: the last one carries 2 unused bits. `c` = 28 = 0b011100; `d` sets one.
    assert!(KEY.ends_with('c'));
    let input = format!("{}d", &KEY[..KEY.len() - 1]);
    let report = check(input.as_bytes());
    assert_eq!(kinds(&report), [IssueKind::NonZeroTrailingBits]);
    assert_eq!(report.agent_verdict(), AgentVerdict::Accepts);
    assert_eq!(parse(&input).to_canonical().expose_secret(), KEY);
}

#[test]
fn three_fields() {
    let input = key_with_fields("https://portainer.example.com|portainer.example.com:30776|7");
    let report = check(&input);
    assert_eq!(kinds(&report), [IssueKind::FieldCount { found: 3 }]);
    let issue = &report.issues()[0];
    assert_eq!((issue.offset, issue.len), (0, input.len()));
    assert_eq!(issue.message(), "the decoded key has 3 `|`-separated fields, the agent needs exactly 4");
    assert_eq!(report.agent_verdict(), AgentVerdict::InvalidKeyFormat);
}

#[test]
fn field_problems() {
    let md5 = "4b:1c:cb:00:11:22:33:44:55:66:77:88:99:aa:bb:cc";
    let cases: [(String, Vec<IssueKind>); 7] = [
        (
            format!("http://10.116.1.178:9000|10.116.1.178:8000|{md5}|52"),
            vec![IssueKind::UrlInsecureHttp, IssueKind::ServerFingerprintLegacyMd5],
        ),
        (format!("portainer|h:8000|{FINGERPRINT}|1"), vec![IssueKind::UrlNotHttp]),
        (format!("https://p|h|{FINGERPRINT}|1"), vec![IssueKind::TunnelAddrInvalid(TunnelAddrProblem::MissingPort)]),
        (
            format!("https://p|h:70000|{FINGERPRINT}|1"),
            vec![IssueKind::TunnelAddrInvalid(TunnelAddrProblem::PortOutOfRange)],
        ),
        (format!("https://p|https://h:443|{FINGERPRINT}|1"), vec![IssueKind::TunnelAddrHasScheme]),
        ("https://p|h:1||-3".to_owned(), vec![IssueKind::ServerFingerprintEmpty, IssueKind::NegativeEndpointId]),
        (
            "https://p|h:1|SHF e25z|x".to_owned(),
            vec![IssueKind::ServerFingerprintUnrecognized, IssueKind::EndpointIdNotInteger],
        ),
    ];
    for (fields, expected) in cases {
        let report = check(&key_with_fields(&fields));
        assert_eq!(kinds(&report), expected, "{fields}");
        for issue in report.issues() {
            assert!(issue.kind.is_about_decoded_key());
            assert!(!issue.message().contains("10.116"), "no field values in messages");
        }
    }
}

#[test]
fn http_url_is_only_a_warning() {
    let input = key_with_fields(&format!("http://p.example.com|p.example.com:8000|{FINGERPRINT}|3"));
    let report = check(&input);
    assert!(report.is_valid());
    assert_eq!(report.warning_count(), 1);
    assert!(report.issues()[0].help().contains("insecure connection"));
}

fn arbitrary_key_text() -> impl Strategy<Value = String> {
    // DNS names: no label ends with `-` (check refuses those).
    let host = "[a-z]([a-z0-9-]{0,19}[a-z0-9])?(\\.[a-z]([a-z0-9-]{0,19}[a-z0-9])?){0,3}";
    (host, host, 1u32..=65535, proptest::collection::vec(any::<u8>(), 32), 0u32..100_000).prop_map(
        |(url_host, tunnel_host, port, digest, id)| {
            format!("https://{url_host}|{tunnel_host}:{port}|{}|{id}", STANDARD.encode(digest))
        },
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..400)) {
        let report = check(&input);
        for issue in report.issues() {
            prop_assert!(issue.offset + issue.len <= input.len());
            let _ = (issue.message(), issue.help());
        }
        let parsed = EdgeKey::parse(&input);
        // No errors in the strict check means the lenient parse reads it.
        if report.is_valid() {
            prop_assert!(parsed.is_ok());
        }
    }

    #[test]
    fn base64ish_bytes_never_panic(input in "[A-Za-z0-9+/=\\-_ \r\n\t|]{0,300}") {
        let report = check(input.as_bytes());
        for issue in report.issues() {
            prop_assert!(issue.offset + issue.len <= input.len());
        }
        let _ = EdgeKey::parse(input.as_bytes());
    }

    #[test]
    fn encode_then_parse_round_trips(text in arbitrary_key_text()) {
        let encoded = encode(&text);
        let key = EdgeKey::parse(encoded.as_bytes()).unwrap();
        let canonical = key.to_canonical();
        prop_assert_eq!(canonical.expose_secret(), encoded.as_str());
        prop_assert!(EdgeKey::parse(canonical.expose_secret().as_bytes()).unwrap() == key);
    }

    #[test]
    fn canonical_keys_check_clean(text in arbitrary_key_text()) {
        let encoded = encode(&text);
        let report = check(encoded.as_bytes());
        prop_assert_eq!(report.issues(), &[]);
        prop_assert_eq!(report.agent_verdict(), AgentVerdict::Accepts);
    }

    #[test]
    fn wraps_whitespace_and_padding_still_parse(
        text in arbitrary_key_text(),
        inserts in proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![" ", "\n", "\r\n", "\t", "  \n"])), 0..8),
        padding in 0usize..4,
    ) {
        let canonical = encode(&text);
        let mut noisy = canonical.clone();
        // Insert from the back so earlier indices stay inside the string.
        let mut positions: Vec<(usize, &str)> = inserts
            .iter()
            .map(|(index, ws)| (index.index(canonical.len() + 1), *ws))
            .collect();
        positions.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
        for (at, ws) in positions {
            noisy.insert_str(at, ws);
        }
        noisy.push_str(&"=".repeat(padding));
        let key = EdgeKey::parse(noisy.as_bytes()).unwrap();
        let reencoded = key.to_canonical();
        prop_assert_eq!(reencoded.expose_secret(), canonical.as_str());
    }

    #[test]
    fn injected_space_is_reported_where_the_agent_fails(
        text in arbitrary_key_text(),
        at in any::<prop::sample::Index>(),
    ) {
        let canonical = encode(&text);
        let at = at.index(canonical.len());
        let mut input = canonical.clone();
        input.insert(at, ' ');
        let report = check(input.as_bytes());
        prop_assert_eq!(report.issues()[0].offset, at);
        prop_assert_eq!(report.agent_verdict(), AgentVerdict::IllegalBase64 { offset: at });
    }
}
