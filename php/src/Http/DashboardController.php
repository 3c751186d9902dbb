<?php

namespace Scada\Broadcasting\Http;

use Illuminate\Contracts\Config\Repository as ConfigRepository;
use Illuminate\Http\Request;
use Illuminate\Http\Response;
use Symfony\Component\HttpFoundation\BinaryFileResponse;
use Symfony\Component\HttpKernel\Exception\NotFoundHttpException;

/**
 * `GET {dashboard.route}` (opt-in): the static dashboard page of
 * resources/dashboard with its configuration (channels, mode, the SSE URL
 * from `sse.url`, or the Pusher connection's public key and host) embedded,
 * and `GET {dashboard.route}/{file}` for its own files, nothing outside that folder.
 */
class DashboardController
{
    private const TYPES = ['html' => 'text/html; charset=utf-8', 'js' => 'text/javascript; charset=utf-8', 'css' => 'text/css; charset=utf-8', 'txt' => 'text/plain; charset=utf-8', 'md' => 'text/plain; charset=utf-8'];

    /** The folder vendor:publish --tag=scada-dashboard copies. */
    public static function root(): string
    {
        return dirname(__DIR__, 2) . '/resources/dashboard';
    }

    public function page(Request $request, ConfigRepository $config): Response
    {
        $html = (string) file_get_contents(static::root() . '/index.html');
        $page = self::pageConfig($config, $request);
        $json = json_encode($page, JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
        // Relative asset URLs resolve under the route; the connector reads the CSRF token for the SSE token route.
        $head = '<base href="' . e(rtrim($request->getBaseUrl() . '/' . ltrim((string) $config->get('scada-broadcasting.dashboard.route'), '/'), '/') . '/') . '">';
        if ($request->hasSession()) {
            $head .= "\n  <meta name=\"csrf-token\" content=\"" . e((string) $request->session()->token()) . '">';
        }
        $html = str_replace('<meta charset="utf-8">', "<meta charset=\"utf-8\">\n  $head", $html);
        $html = str_replace('<script type="application/json" id="scada-dashboard-config">{}</script>', '<script type="application/json" id="scada-dashboard-config">' . $json . '</script>', $html);

        return new Response($html, 200, [
            'Content-Type' => self::TYPES['html'], 'Cache-Control' => 'no-store', 'X-Content-Type-Options' => 'nosniff',
            'Content-Security-Policy' => self::contentSecurityPolicy($page),
        ]);
    }

    /**
     * The page loads only its own files and connects only where its embedded
     * config says: even a script injected into it could not send the
     * session's token elsewhere. uPlot sets inline styles; the favicon is a data: URL.
     */
    public static function contentSecurityPolicy(array $page): string
    {
        $connect = array_unique(["'self'", ...($page['allowedOrigins'] ?? [])]);

        return "default-src 'self'; script-src 'self'; connect-src " . implode(' ', $connect)
            . "; img-src 'self' data:; style-src 'self' 'unsafe-inline'; base-uri 'self'; form-action 'none'; frame-ancestors 'self'";
    }

    public function file(string $path): BinaryFileResponse
    {
        $root = realpath(static::root());
        if ($root === false) {
            // Never fall back to '' (that would accept any absolute path with a page file's extension).
            throw new \RuntimeException('scada dashboard: its folder ' . static::root() . ' does not exist (the package is incomplete)');
        }
        if (str_contains($path, "\0")) {
            throw new NotFoundHttpException('no dashboard file (a NUL byte in the path)');
        }
        $file = realpath($root . '/' . $path);
        $type = self::TYPES[pathinfo($path, PATHINFO_EXTENSION)] ?? null;
        if ($file === false || ! str_starts_with($file, $root . DIRECTORY_SEPARATOR) || ! is_file($file) || $type === null) {
            throw new NotFoundHttpException("no dashboard file $path");
        }

        return new BinaryFileResponse($file, 200, ['Content-Type' => $type, 'X-Content-Type-Options' => 'nosniff'], true, null, false, false);
    }

    /** What the page may know: channel names, URLs, the Pusher app key (public by design); never a secret. */
    public static function pageConfig(ConfigRepository $config, Request $request): array
    {
        $dashboard = (array) $config->get('scada-broadcasting.dashboard', []);
        $page = [
            'mode' => (string) ($dashboard['mode'] ?? 'sse'),
            'channels' => array_values(array_map('strval', (array) ($dashboard['channels'] ?? []))),
            'sseUrl' => (string) $config->get('scada-broadcasting.sse.url', '/sse'),
        ];
        $tokenRoute = $config->get('scada-broadcasting.sse.token_route');
        if ($tokenRoute) {
            $page['tokenUrl'] = $request->getBaseUrl() . '/' . ltrim((string) $tokenRoute, '/');
        }
        // An absolute sse.url on another origin (the sidecar on its own port or host): listed, so the page accepts it.
        $sseOrigin = self::origin($page['sseUrl']);
        if ($sseOrigin !== null && $sseOrigin !== $request->getSchemeAndHttpHost()) {
            $page['allowedOrigins'] = [$sseOrigin];
        }
        if ($page['mode'] === 'pusher') {
            $name = (string) $config->get('broadcasting.default');
            $connection = (array) $config->get("broadcasting.connections.$name", []);
            $options = (array) ($connection['options'] ?? []);
            // The browser's address of the Pusher-protocol server, which is often not the app's (127.0.0.1, a container name).
            $browser = array_filter((array) ($dashboard['pusher'] ?? []), fn ($v) => $v !== null && $v !== '');
            $host = $browser['host'] ?? $options['host'] ?? null;
            $port = $browser['port'] ?? $options['port'] ?? null;
            $scheme = (string) ($browser['scheme'] ?? $options['scheme'] ?? 'https');
            $page += array_filter([
                'key' => $connection['key'] ?? null,
                'host' => $host,
                'port' => $port !== null ? (int) $port : null,
                'tls' => $scheme === 'https',
                'cluster' => $options['cluster'] ?? null,
                'authEndpoint' => $request->getBaseUrl() . '/broadcasting/auth',
            ], fn ($v) => $v !== null && $v !== '');
            if ($host !== null) {
                $page['allowedOrigins'] = array_values(array_unique([...($page['allowedOrigins'] ?? []), ($scheme === 'https' ? 'wss://' : 'ws://') . $host . ($port !== null ? ':' . (int) $port : '')]));
            }
        }

        return $page;
    }

    /** scheme://host[:port] of an absolute http(s) URL, null for a relative one. */
    private static function origin(string $url): ?string
    {
        $parts = parse_url($url);
        if (! is_array($parts) || ! isset($parts['scheme'], $parts['host']) || ! in_array(strtolower($parts['scheme']), ['http', 'https'], true)) {
            return null;
        }

        return strtolower($parts['scheme']) . '://' . strtolower($parts['host']) . (isset($parts['port']) ? ':' . $parts['port'] : '');
    }
}
