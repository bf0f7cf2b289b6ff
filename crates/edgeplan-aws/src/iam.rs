//! IAM policy documents as AWS returns them. GetPolicyVersion's document is URL-encoded per
//! RFC 3986 on real AWS and raw JSON on moto (moto.md §2), and aws-sdk-iam does not decode it
//! (aws.md §3): decode only when it is encoded, and never turn `+` into a space (that is
//! form decoding, not RFC 3986; a literal `+` in a condition value must survive).

/// The document as JSON text, whichever way it came.
pub(crate) fn decode_document(raw: &str) -> String {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('{') {
        return raw.to_string();
    }
    percent_decode(raw).unwrap_or_else(|| raw.to_string())
}

/// RFC 3986 percent-decoding; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A customer-managed policy's ARN (`arn:aws:iam::123456789012:policy/…`), not an AWS-managed
/// one (`arn:aws:iam::aws:policy/…`): only the former can get a new version.
pub(crate) fn is_customer_managed(arn: &str, account: &str) -> bool {
    arn.split(':').nth(4) == Some(account) && arn.split(':').nth(5).is_some_and(|r| r.starts_with("policy/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_document_is_decoded_and_a_raw_one_left_alone() {
        let raw = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeRouteTables","Resource":"*"}]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22ec2%3ADescribeRouteTables%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        assert_eq!(decode_document(raw), raw);
        assert_eq!(decode_document(encoded), raw);
    }

    #[test]
    fn a_plus_stays_a_plus() {
        // `%2B` is a plus, and a literal `+` is a plus too: never a space.
        let encoded = "%7B%22Condition%22%3A%7B%22StringLike%22%3A%7B%22aws%3AuserId%22%3A%22a%2Bb+c%22%7D%7D%7D";
        assert_eq!(decode_document(encoded), r#"{"Condition":{"StringLike":{"aws:userId":"a+b+c"}}}"#);
        let raw = r#"{"Condition":{"StringLike":{"aws:userId":"a+b"}}}"#;
        assert_eq!(decode_document(raw), raw);
    }

    #[test]
    fn a_malformed_escape_is_returned_as_it_came() {
        assert_eq!(decode_document("%7B%2"), "%7B%2");
    }

    #[test]
    fn customer_managed_policies_are_the_accounts_own() {
        assert!(is_customer_managed(
            "arn:aws:iam::123456789012:policy/AWSLoadBalancerControllerIAMPolicy",
            "123456789012"
        ));
        assert!(!is_customer_managed("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", "123456789012"));
        assert!(!is_customer_managed("arn:aws:iam::210987654321:policy/Other", "123456789012"));
    }
}
