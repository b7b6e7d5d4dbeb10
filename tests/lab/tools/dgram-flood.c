/*
 * dgram-flood: the peer of a unixgram virtio-net (krunkit-pause-quiesce).
 * Binds SOCKET, waits for the VMM's first datagram (vfkit's "VFKT" magic)
 * to learn its address, then sends it one broadcast Ethernet frame every
 * INTERVAL_MS until killed, writing how many it has sent to COUNT_FILE
 * after each one. A VMM that delivers them while the VM is paused writes
 * guest memory; one that quiesces its devices does not.
 *
 * usage: dgram-flood SOCKET COUNT_FILE INTERVAL_MS
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: dgram-flood SOCKET COUNT_FILE INTERVAL_MS\n");
        return 2;
    }
    long interval_ms = strtol(argv[3], NULL, 10);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un me = {.sun_family = AF_UNIX};
    if (s < 0 || strlen(argv[1]) >= sizeof(me.sun_path) || interval_ms <= 0) {
        perror("dgram-flood: socket");
        return 1;
    }
    strcpy(me.sun_path, argv[1]);
    unlink(argv[1]);
    if (bind(s, (struct sockaddr *)&me, sizeof(me)) < 0) {
        perror("dgram-flood: bind");
        return 1;
    }
    struct sockaddr_un peer;
    socklen_t plen = sizeof(peer);
    char first[2048];
    if (recvfrom(s, first, sizeof(first), 0, (struct sockaddr *)&peer, &plen) < 0) {
        perror("dgram-flood: recvfrom");
        return 1;
    }
    /* Broadcast destination, a locally administered source, an unused EtherType. */
    unsigned char frame[1024];
    memset(frame, 0xa5, sizeof(frame));
    memset(frame, 0xff, 6);
    memcpy(frame + 6, "\x02\x00\x00\x00\x00\x01", 6);
    frame[12] = 0x88;
    frame[13] = 0xb5;
    int cf = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (cf < 0) {
        perror("dgram-flood: count file");
        return 1;
    }
    struct timespec gap = {.tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000};
    for (unsigned long n = 1;; n++) {
        memcpy(frame + 14, &n, sizeof(n));
        if (sendto(s, frame, sizeof(frame), 0, (struct sockaddr *)&peer, plen) < 0 &&
            errno != EAGAIN && errno != ENOBUFS) {
            perror("dgram-flood: sendto");
            return 1;
        }
        char line[32];
        int len = snprintf(line, sizeof(line), "%lu\n", n);
        if (pwrite(cf, line, (size_t)len, 0) != len)
            return 1;
        nanosleep(&gap, NULL);
    }
}
