use edgeplan_diag::SourceFile;
use edgeplan_spec::{SecretRef, TunnelPort, parse};

fn source(text: &str) -> SourceFile {
    SourceFile::new("spec.yaml", text)
}

#[test]
fn seed_spec_parses_with_spans() {
    let text = include_str!("../../../specs/seed.yaml");
    let src = source(text);
    let spec = parse(&src).unwrap_or_else(|f| panic!("{}: {}", f.code(), f.message));
    let provider = &spec.spec.provider;
    assert_eq!(provider.portainer.tunnel_port(), TunnelPort::Auto);
    assert_eq!(provider.listener_port(), 8000);
    assert!(matches!(provider.portainer.api_key.value, SecretRef::Env(ref n) if n == "PORTAINER_API_KEY"));
    let cidr = provider.nlb_subnet.cidr.as_ref().unwrap();
    assert_eq!(&text[cidr.span.start..cidr.span.end], "192.168.0.0/24");
    assert_eq!(spec.spec.consumers.len(), 1);
}

#[test]
fn unknown_key_suggests_the_closest_key() {
    let text = include_str!("../../../specs/seed.yaml").replace("    kubeContext: staging", "    kubecontext: staging");
    let src = source(&text);
    let finding = parse(&src).unwrap_err();
    assert_eq!(finding.code(), "EP006");
    assert!(finding.help.starts_with("did you mean `kubeContext`?"), "{}", finding.help);
    let span = finding.span.unwrap();
    assert_eq!(&text[span.start..span.end], "kubecontext");
}

#[test]
fn literal_secret_parses_without_keeping_the_value() {
    let text = include_str!("../../../specs/seed.yaml")
        .replace("apiKey:\n        env: PORTAINER_API_KEY", "apiKey: ptr_S3cr3tValue");
    let spec = parse(&source(&text)).unwrap();
    let api_key = &spec.spec.provider.portainer.api_key;
    assert_eq!(api_key.value, SecretRef::Literal { len: 15 });
    assert!(!format!("{api_key:?}").contains("S3cr3t"));
}
