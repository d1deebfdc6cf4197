//! `wasi:http` `error-code` between its two versions: the 0.2 variant (the p2 bindings, and the
//! body type the whole app passes around) and the 0.3 one (what a WASIp3 guest sends and
//! receives). The two WIT variants have the same cases and payloads; the generated Rust types are
//! merely distinct, so this maps case to case (as Spin's outbound-http factor does between its p2
//! sender and its p3 guests). It knows nothing else of either version.

use wasmtime_wasi_http::p2::bindings::http::types as v2;
use wasmtime_wasi_http::p3::bindings::http::types as v3;

/// Defines one direction of the mapping: cases without a payload and cases whose payload is a
/// plain value come as lists; the three record payloads are rebuilt field by field.
macro_rules! error_code_mapping {
    ($name:ident: $from:ident -> $to:ident; units: $($unit:ident),*; values: $($value:ident),*) => {
        #[doc = concat!("`", stringify!($from), "::ErrorCode` as `", stringify!($to), "::ErrorCode`.")]
        pub fn $name(code: $from::ErrorCode) -> $to::ErrorCode {
            use $from::ErrorCode as F;
            use $to::ErrorCode as T;
            let field_size = |p: $from::FieldSizePayload| $to::FieldSizePayload {
                field_name: p.field_name,
                field_size: p.field_size,
            };
            match code {
                $(F::$unit => T::$unit,)*
                $(F::$value(v) => T::$value(v),)*
                F::DnsError(p) => T::DnsError($to::DnsErrorPayload {
                    rcode: p.rcode,
                    info_code: p.info_code,
                }),
                F::TlsAlertReceived(p) => T::TlsAlertReceived($to::TlsAlertReceivedPayload {
                    alert_id: p.alert_id,
                    alert_message: p.alert_message,
                }),
                F::HttpRequestHeaderSize(p) => T::HttpRequestHeaderSize(p.map(field_size)),
                F::HttpRequestTrailerSize(p) => T::HttpRequestTrailerSize(field_size(p)),
                F::HttpResponseHeaderSize(p) => T::HttpResponseHeaderSize(field_size(p)),
                F::HttpResponseTrailerSize(p) => T::HttpResponseTrailerSize(field_size(p)),
            }
        }
    };
}

/// Both directions from one list of cases.
macro_rules! error_code_mappings {
    ($($cases:tt)*) => {
        error_code_mapping!(p2_to_p3: v2 -> v3; $($cases)*);
        error_code_mapping!(p3_to_p2: v3 -> v2; $($cases)*);
    };
}

error_code_mappings!(
    units: DnsTimeout, DestinationNotFound, DestinationUnavailable, DestinationIpProhibited,
        DestinationIpUnroutable, ConnectionRefused, ConnectionTerminated, ConnectionTimeout,
        ConnectionReadTimeout, ConnectionWriteTimeout, ConnectionLimitReached, TlsProtocolError,
        TlsCertificateError, HttpRequestDenied, HttpRequestLengthRequired,
        HttpRequestMethodInvalid, HttpRequestUriInvalid, HttpRequestUriTooLong,
        HttpResponseIncomplete, HttpResponseTimeout, HttpUpgradeFailed, HttpProtocolError,
        LoopDetected, ConfigurationError;
    values: HttpRequestBodySize, HttpRequestHeaderSectionSize, HttpRequestTrailerSectionSize,
        HttpResponseHeaderSectionSize, HttpResponseBodySize, HttpResponseTrailerSectionSize,
        HttpResponseTransferCoding, HttpResponseContentCoding, InternalError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_a_round_trip() {
        let codes = [
            v2::ErrorCode::HttpRequestDenied,
            v2::ErrorCode::ConnectionReadTimeout,
            v2::ErrorCode::InternalError(Some("boom".into())),
            v2::ErrorCode::HttpResponseBodySize(Some(7)),
            v2::ErrorCode::HttpRequestHeaderSize(Some(v2::FieldSizePayload {
                field_name: Some("x".into()),
                field_size: Some(3),
            })),
        ];
        for code in codes {
            let text = format!("{code:?}");
            assert_eq!(format!("{:?}", p3_to_p2(p2_to_p3(code))), text);
        }
        assert!(matches!(
            p2_to_p3(v2::ErrorCode::HttpRequestDenied),
            v3::ErrorCode::HttpRequestDenied
        ));
    }
}
