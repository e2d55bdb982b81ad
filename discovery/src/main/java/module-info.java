/** Cluster membership (Atomix SWIM, or a static list) and who owns which span (rendezvous placement). */
module dev.starling.discovery {
    requires atomix.cluster;
    requires atomix.utils;
    requires java.logging;

    exports dev.starling.discovery;
}
