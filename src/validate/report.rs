//! Rendering a validation report: text, JSON, SARIF 2.1.0, JUnit XML (being written).
