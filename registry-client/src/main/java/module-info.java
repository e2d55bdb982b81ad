/** An OCI registry client: manifests, blobs and Range reads, auth, pushes. */
module dev.starling.registry {
    requires com.fasterxml.jackson.databind;
    requires okhttp3;
    requires okio;
    requires java.logging;

    exports dev.starling.registry;
    // Jackson binds the manifest and config records by reflection
    opens dev.starling.registry to com.fasterxml.jackson.databind;
}
