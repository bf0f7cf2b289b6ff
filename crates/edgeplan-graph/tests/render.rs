//! DOT and mermaid output, pinned.

use edgeplan_graph::{Dag, GraphBuilder};

fn build(
    nodes: &[(&'static str, &'static str)],
    edges: &[(&'static str, &'static str)],
) -> Dag<&'static str, &'static str, ()> {
    let mut builder = GraphBuilder::new();
    for (key, kind) in nodes {
        builder.add_node(*key, *kind).expect("distinct nodes");
    }
    for (from, to) in edges {
        builder.add_edge(from, to, ()).expect("known nodes");
    }
    builder.build().expect("acyclic")
}

fn privatelink() -> Dag<&'static str, &'static str, ()> {
    build(
        &[
            ("provider.nlb", "aws_lb"),
            ("provider.endpoint_service", "aws_vpc_endpoint_service"),
            ("consumer.prod.vpce", "aws_vpc_endpoint"),
            ("consumer.prod.agent", "edge agent"),
        ],
        &[
            ("provider.nlb", "provider.endpoint_service"),
            ("provider.endpoint_service", "consumer.prod.vpce"),
            ("consumer.prod.vpce", "consumer.prod.agent"),
        ],
    )
}

fn label(key: &&str, kind: &&str) -> String {
    format!("{key}\n{kind}")
}

#[test]
fn dot() {
    insta::assert_snapshot!(privatelink().to_dot(label), @r#"
    digraph {
        rankdir=LR;
        "consumer.prod.agent" [label="consumer.prod.agent\nedge agent"];
        "consumer.prod.vpce" [label="consumer.prod.vpce\naws_vpc_endpoint"];
        "provider.endpoint_service" [label="provider.endpoint_service\naws_vpc_endpoint_service"];
        "provider.nlb" [label="provider.nlb\naws_lb"];
        "consumer.prod.vpce" -> "consumer.prod.agent";
        "provider.endpoint_service" -> "consumer.prod.vpce";
        "provider.nlb" -> "provider.endpoint_service";
    }
    "#);
}

#[test]
fn mermaid() {
    insta::assert_snapshot!(privatelink().to_mermaid(label), @r#"
    flowchart LR
        consumer_prod_agent["consumer.prod.agent<br>edge agent"]
        consumer_prod_vpce["consumer.prod.vpce<br>aws_vpc_endpoint"]
        provider_endpoint_service["provider.endpoint_service<br>aws_vpc_endpoint_service"]
        provider_nlb["provider.nlb<br>aws_lb"]
        consumer_prod_vpce --> consumer_prod_agent
        provider_endpoint_service --> consumer_prod_vpce
        provider_nlb --> provider_endpoint_service
    "#);
}

#[test]
fn dot_escapes_quotes_and_backslashes() {
    let dag = build(&[(r#"say "hi""#, r"back\slash"), ("plain", "")], &[(r#"say "hi""#, "plain")]);
    insta::assert_snapshot!(dag.to_dot(|_, kind| kind.to_string()), @r#"
    digraph {
        rankdir=LR;
        "plain" [label=""];
        "say \"hi\"" [label="back\\slash"];
        "say \"hi\"" -> "plain";
    }
    "#);
}

#[test]
fn mermaid_ids_are_sanitised_unique_and_never_keywords() {
    // `a_b` is already a valid id and keeps it; `a.b` and `a-b` collide with it and get suffixes.
    let dag = build(
        &[("a.b", r#"quote " hash # amp & <tag>"#), ("a-b", ""), ("a_b", ""), ("end", ""), ("9lives", ""), ("", "")],
        &[("a.b", "end"), ("end", "9lives")],
    );
    insta::assert_snapshot!(dag.to_mermaid(|key, kind| format!("{key} {kind}")), @r#"
    flowchart LR
        n_[" "]
        n_9lives["9lives "]
        a_b_2["a-b "]
        a_b_3["a.b quote #quot; hash #35; amp #amp; #lt;tag#gt;"]
        a_b["a_b "]
        n_end["end "]
        a_b_3 --> n_end
        n_end --> n_9lives
    "#);
}
