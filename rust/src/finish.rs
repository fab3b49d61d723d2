//! Finish reasons in the GenAI conventions' words (`stop`, `length`, `tool_calls`,
//! `content_filter`, `error`) whatever the provider calls them, so that a dashboard keyed on
//! them counts every provider alike. A reason without a known equivalent is kept as given.

/// The conventions' name of a provider's finish reason.
pub fn conventions(reason: &str) -> &str {
    match reason {
        // Anthropic; Gemini; Cohere.
        "end_turn" | "stop_sequence" | "STOP" | "COMPLETE" => "stop",
        "max_tokens" | "MAX_TOKENS" => "length",
        // Anthropic's; OpenAI's legacy function calling.
        "tool_use" | "function_call" => "tool_calls",
        "SAFETY" => "content_filter",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::conventions;

    #[test]
    fn providers_reasons_in_the_conventions_words() {
        assert_eq!(conventions("function_call"), "tool_calls");
        assert_eq!(conventions("end_turn"), "stop");
        assert_eq!(conventions("MAX_TOKENS"), "length");
        assert_eq!(conventions("SAFETY"), "content_filter");
        assert_eq!(conventions("stop"), "stop");
        assert_eq!(conventions("something_new"), "something_new");
    }
}
