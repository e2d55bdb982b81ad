/** The eStargz format: reading (footer, TOC, chunks, verification), tar, and the converter. */
module dev.starling.estargz {
    requires com.fasterxml.jackson.core;
    requires com.github.luben.zstd_jni;

    exports dev.starling.estargz;
    exports dev.starling.estargz.tar;
    exports dev.starling.estargz.write;
}
