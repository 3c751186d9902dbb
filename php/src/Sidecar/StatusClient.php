<?php

namespace Scada\Broadcasting\Sidecar;

use Scada\Broadcasting\Exceptions\SidecarUnavailable;

/** Reads the sidecar's status endpoint (HTTP over its Unix status socket, or loopback TCP). */
final class StatusClient
{
    public function __construct(private string $endpoint)
    {
    }

    /** The status socket next to the main socket (what the sidecar creates by default). */
    public static function forSocket(string $socket, ?string $statusAddr = null): self
    {
        return new self($statusAddr ? "tcp://$statusAddr" : 'unix://' . dirname($socket) . '/status.sock');
    }

    public function endpoint(): string
    {
        return $this->endpoint;
    }

    public function status(): array
    {
        return $this->request('GET', '/status');
    }

    /** Asks the sidecar to look for orphaned spool files now. */
    public function flush(): array
    {
        return $this->request('POST', '/flush');
    }

    private function request(string $method, string $path): array
    {
        $s = @stream_socket_client($this->endpoint, $errno, $error, 2.0);
        if ($s === false) {
            throw SidecarUnavailable::at($this->endpoint, $error ?: "error $errno");
        }
        stream_set_timeout($s, 5);
        fwrite($s, "$method $path HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
        $raw = stream_get_contents($s);
        fclose($s);
        [$head, $body] = array_pad(explode("\r\n\r\n", (string) $raw, 2), 2, '');
        if (! str_starts_with($head, 'HTTP/1.0 200')) {
            throw SidecarUnavailable::at($this->endpoint, 'unexpected answer: ' . strtok($head, "\r\n"));
        }
        $json = json_decode($body, true);
        if (! is_array($json)) {
            throw SidecarUnavailable::at($this->endpoint, 'the answer is not JSON');
        }

        return $json;
    }
}
