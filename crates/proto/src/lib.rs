//! Generated code for tradepact's gRPC contracts.
//!
//! The `.proto` sources live in the workspace's `proto/` folder; they are compiled
//! with `protox` (no system `protoc`) at build time.

/// The generated modules, nested as the proto packages are (cross-package references
/// such as `super::super::data::v1::Flow` rely on it).
pub mod tradepact {
    /// The data service's package.
    pub mod data {
        /// `tradepact.data.v1`.
        pub mod v1 {
            #![allow(clippy::all, clippy::pedantic, missing_docs)]
            tonic::include_proto!("tradepact.data.v1");
        }
    }
    /// The negotiation service's package.
    pub mod negotiation {
        /// `tradepact.negotiation.v1`.
        pub mod v1 {
            #![allow(clippy::all, clippy::pedantic, missing_docs)]
            tonic::include_proto!("tradepact.negotiation.v1");
        }
    }
}

/// `tradepact.data.v1`: the trade data service.
pub use tradepact::data::v1 as data_v1;
/// `tradepact.negotiation.v1`: the negotiation service.
pub use tradepact::negotiation::v1 as negotiation_v1;

/// Encoded `FileDescriptorSet` of every tradepact proto and its imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tradepact_descriptor");

/// The method names of `service` (its full name, e.g. `tradepact.data.v1.TradeDataService`),
/// from the descriptor set; empty for an unknown service.
pub fn method_names(service: &str) -> Vec<String> {
    methods(service).map(|m| m.name().to_owned()).collect()
}

/// The names of the methods of `service` whose requests are streams.
pub fn client_streaming_methods(service: &str) -> Vec<String> {
    methods(service)
        .filter(|m| m.client_streaming())
        .map(|m| m.name().to_owned())
        .collect()
}

fn methods(service: &str) -> impl Iterator<Item = prost_types::MethodDescriptorProto> {
    use prost::Message;
    let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap_or_default();
    let service = service.to_owned();
    fds.file.into_iter().flat_map(move |f| {
        let package = f.package().to_owned();
        let service = service.clone();
        f.service
            .into_iter()
            .filter(move |s| format!("{package}.{}", s.name()) == service)
            .flat_map(|s| s.method)
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_decodes_and_names_the_data_service() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let data = fds
            .file
            .iter()
            .find(|f| f.package() == "tradepact.data.v1")
            .expect("data proto in the descriptor set");
        assert!(data.service.iter().any(|s| s.name() == "TradeDataService"));
        assert!(fds
            .file
            .iter()
            .any(|f| f.service.iter().any(|s| s.name() == "NegotiationService")));
        // Source info carries the comments that `grpcurl describe` shows.
        assert!(data.source_code_info.is_some());
    }

    #[test]
    fn method_names_come_from_the_descriptor_set() {
        let methods = super::method_names("tradepact.data.v1.TradeDataService");
        assert!(methods.iter().any(|m| m == "GetSeries"), "{methods:?}");
        assert!(super::method_names("tradepact.data.v1.NoSuchService").is_empty());
        assert_eq!(
            super::client_streaming_methods("tradepact.data.v1.TradeDataService"),
            vec!["StreamWritePoints", "StreamWriteColumns"]
        );
    }
}

mod model;
