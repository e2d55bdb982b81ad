/** The peer chunk protocol: frames, codec, client and server over Netty, TLS. */
module dev.starling.protocol {
    requires io.netty.buffer;
    requires io.netty.codec;
    requires io.netty.common;
    requires io.netty.handler;
    requires io.netty.transport;
    requires java.logging;

    exports dev.starling.protocol;
}
