/// A lead score or a lead-score threshold: a whole number from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LeadScore(u8);

impl LeadScore {
    pub fn new(value: i64) -> Result<Self, String> {
        u8::try_from(value)
            .ok()
            .filter(|v| *v <= 100)
            .map(Self)
            .ok_or_else(|| format!("The lead-score threshold must be between 0 and 100 (got {value})."))
    }

    pub fn parse(input: &str) -> Result<Self, String> {
        let raw = input.trim();
        if raw.is_empty() {
            return Err("Enter a lead-score threshold from 0 to 100.".into());
        }
        let value: i64 = raw
            .parse()
            .map_err(|_| format!("\u{201c}{raw}\u{201d} is not a whole number; enter a threshold from 0 to 100."))?;
        Self::new(value)
    }

    pub fn value(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::LeadScore;

    #[test]
    fn accepts_zero_to_one_hundred() {
        assert_eq!(LeadScore::parse("0").unwrap().value(), 0);
        assert_eq!(LeadScore::parse(" 70 ").unwrap().value(), 70);
        assert_eq!(LeadScore::parse("100").unwrap().value(), 100);
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        assert!(LeadScore::parse("101").unwrap_err().contains("between 0 and 100"));
        assert!(LeadScore::parse("-1").unwrap_err().contains("between 0 and 100"));
        assert!(LeadScore::parse("7.5").unwrap_err().contains("whole number"));
        assert!(LeadScore::parse("").unwrap_err().contains("Enter"));
        assert!(LeadScore::parse("99999999999999999999").is_err());
    }
}
