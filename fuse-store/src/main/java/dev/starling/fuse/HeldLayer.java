package dev.starling.fuse;

/** A layer the store holds, by image and key, as {@code starling status} shows it. */
public record HeldLayer(String imageRef, String key, int users, int openFiles) {
}
