package dev.starling.cli; public class StarlingCli { public static void main(String[] a) {} }
