<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A fresh Laravel application in a temp directory, laid out as `laravel new`
 * creates it for the installed Laravel's generation (11+: bootstrap/app.php
 * with withRouting(), no config/broadcasting.php, no routes/channels.php;
 * 8/10: Kernels, config/app.php with BroadcastServiceProvider commented out).
 * Composer's part is stood in for: vendor/autoload.php loads Debian's Laravel
 * and the package's PSR-4 classes, and vendor/composer/installed.json lists
 * the package as php/composer.json describes it, so Laravel's own package
 * discovery registers its service provider.
 */
final class FreshApp
{
    public readonly string $path;

    /** @param bool $withBroadcasting 11+: bootstrap/app.php registers channels with ->withBroadcasting() (web middleware) */
    public function __construct(string $dir, bool $withBroadcasting = false)
    {
        $this->path = "$dir/fresh-app";
        $eleven = TestApp::elevenPlus();
        $composer = json_decode((string) file_get_contents(Processes::root() . '/php/composer.json'), true, 512, JSON_THROW_ON_ERROR);
        $files = [
            'vendor/autoload.php' => self::autoload(),
            'vendor/composer/installed.json' => json_encode(['packages' => [$composer + ['version' => 'dev-main', 'install-path' => Processes::root() . '/php']]], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES),
            '.env' => "APP_NAME=Laravel\nAPP_ENV=local\nAPP_KEY=base64:" . base64_encode(str_repeat('f', 32)) . "\nAPP_DEBUG=true\nAPP_URL=http://localhost\n\n"
                . ($eleven ? "BROADCAST_CONNECTION=log\n" : "BROADCAST_DRIVER=log\n")
                . "CACHE_STORE=array\nCACHE_DRIVER=array\nSESSION_DRIVER=array\nQUEUE_CONNECTION=sync\n\nREDIS_HOST=127.0.0.1\nREDIS_PASSWORD=null\nREDIS_PORT=6379\n",
            'routes/web.php' => "<?php\n\nuse Illuminate\\Support\\Facades\\Route;\n\nRoute::get('/', fn () => 'welcome');\n",
            'routes/console.php' => "<?php\n",
            'app/Providers/AppServiceProvider.php' => "<?php\n\nnamespace App\\Providers;\n\nuse Illuminate\\Support\\ServiceProvider;\n\nclass AppServiceProvider extends ServiceProvider\n{\n    public function register(): void\n    {\n    }\n\n    public function boot(): void\n    {\n    }\n}\n",
            'storage/logs/.gitignore' => "*\n",
            'storage/framework/cache/.gitignore' => "*\n",
            'storage/framework/views/.gitignore' => "*\n",
            'bootstrap/cache/.gitignore' => "*\n",
        ];
        $files += $eleven ? self::elevenSkeleton($withBroadcasting) : self::eightSkeleton();
        foreach ($files as $file => $content) {
            @mkdir(dirname("$this->path/$file"), 0755, true);
            file_put_contents("$this->path/$file", $content);
        }
    }

    public function file(string $relative): string
    {
        return is_file("$this->path/$relative") ? (string) file_get_contents("$this->path/$relative") : '';
    }

    /** @return array<string,string> every file's content, to compare before/after */
    public function snapshot(): array
    {
        $files = [];
        $it = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator($this->path, \FilesystemIterator::SKIP_DOTS));
        foreach ($it as $f) {
            $relative = substr($f->getPathname(), strlen($this->path) + 1);
            if (!str_starts_with($relative, 'storage/') && !str_starts_with($relative, 'bootstrap/cache/')) {
                $files[$relative] = (string) file_get_contents($f->getPathname());
            }
        }
        ksort($files);

        return $files;
    }

    private static function autoload(): string
    {
        $package = var_export(Processes::root() . '/php/src/', true);

        return <<<PHP
<?php
// Stand-in for Composer's autoloader: Debian's Laravel, then the PSR-4 roots of
// the app and of scada-broadcast/laravel (php/composer.json).
require_once 'Illuminate/autoload.php';
spl_autoload_register(function (string \$class): void {
    foreach (['App\\\\' => dirname(__DIR__) . '/app/', 'Scada\\\\Broadcasting\\\\' => $package] as \$prefix => \$dir) {
        if (str_starts_with(\$class, \$prefix) && is_file(\$file = \$dir . str_replace('\\\\', '/', substr(\$class, strlen(\$prefix))) . '.php')) {
            require \$file;
        }
    }
});

PHP;
    }

    /** The Laravel 11+ skeleton's own files. */
    private static function elevenSkeleton(bool $withBroadcasting): array
    {
        return [
            'artisan' => "#!/usr/bin/env php\n<?php\n\nuse Symfony\\Component\\Console\\Input\\ArgvInput;\n\ndefine('LARAVEL_START', microtime(true));\n\nrequire __DIR__.'/vendor/autoload.php';\n\n\$status = (require_once __DIR__.'/bootstrap/app.php')\n    ->handleCommand(new ArgvInput);\n\nexit(\$status);\n",
            'bootstrap/app.php' => "<?php\n\nuse Illuminate\\Foundation\\Application;\nuse Illuminate\\Foundation\\Configuration\\Exceptions;\nuse Illuminate\\Foundation\\Configuration\\Middleware;\n\nreturn Application::configure(basePath: dirname(__DIR__))\n    ->withRouting(\n        web: __DIR__.'/../routes/web.php',\n        commands: __DIR__.'/../routes/console.php',\n        health: '/up',\n    )\n" . ($withBroadcasting ? "    ->withBroadcasting(__DIR__.'/../routes/channels.php', ['middleware' => ['web']])\n" : '') . "    ->withMiddleware(function (Middleware \$middleware): void {\n        //\n    })\n    ->withExceptions(function (Exceptions \$exceptions): void {\n        //\n    })->create();\n",
            'bootstrap/providers.php' => "<?php\n\nreturn [\n    App\\Providers\\AppServiceProvider::class,\n];\n",
            'config/app.php' => "<?php\n\nreturn [\n    'name' => env('APP_NAME', 'Laravel'),\n    'env' => env('APP_ENV', 'production'),\n    'debug' => (bool) env('APP_DEBUG', false),\n    'url' => env('APP_URL', 'http://localhost'),\n    'timezone' => 'UTC',\n    'key' => env('APP_KEY'),\n    'cipher' => 'AES-256-CBC',\n];\n",
        ];
    }

    /** The Laravel 8/10 skeleton's own files (trimmed to what the broadcasting setup touches). */
    private static function eightSkeleton(): array
    {
        $providers = implode("\n", array_map(fn ($p) => "        $p::class,", [
            'Illuminate\\Auth\\AuthServiceProvider', 'Illuminate\\Broadcasting\\BroadcastServiceProvider', 'Illuminate\\Bus\\BusServiceProvider',
            'Illuminate\\Cache\\CacheServiceProvider', 'Illuminate\\Foundation\\Providers\\ConsoleSupportServiceProvider', 'Illuminate\\Database\\DatabaseServiceProvider',
            'Illuminate\\Encryption\\EncryptionServiceProvider', 'Illuminate\\Filesystem\\FilesystemServiceProvider', 'Illuminate\\Foundation\\Providers\\FoundationServiceProvider',
            'Illuminate\\Queue\\QueueServiceProvider', 'Illuminate\\Redis\\RedisServiceProvider', 'Illuminate\\View\\ViewServiceProvider', 'App\\Providers\\AppServiceProvider',
        ]));

        return [
            'artisan' => "#!/usr/bin/env php\n<?php\n\ndefine('LARAVEL_START', microtime(true));\n\nrequire __DIR__.'/vendor/autoload.php';\n\n\$app = require_once __DIR__.'/bootstrap/app.php';\n\n\$kernel = \$app->make(Illuminate\\Contracts\\Console\\Kernel::class);\n\n\$status = \$kernel->handle(\n    \$input = new Symfony\\Component\\Console\\Input\\ArgvInput,\n    new Symfony\\Component\\Console\\Output\\ConsoleOutput\n);\n\n\$kernel->terminate(\$input, \$status);\n\nexit(\$status);\n",
            'bootstrap/app.php' => "<?php\n\n\$app = new Illuminate\\Foundation\\Application(\n    \$_ENV['APP_BASE_PATH'] ?? dirname(__DIR__)\n);\n\n\$app->singleton(\n    Illuminate\\Contracts\\Http\\Kernel::class,\n    App\\Http\\Kernel::class\n);\n\n\$app->singleton(\n    Illuminate\\Contracts\\Console\\Kernel::class,\n    App\\Console\\Kernel::class\n);\n\n\$app->singleton(\n    Illuminate\\Contracts\\Debug\\ExceptionHandler::class,\n    App\\Exceptions\\Handler::class\n);\n\nreturn \$app;\n",
            'app/Http/Kernel.php' => "<?php\n\nnamespace App\\Http;\n\nuse Illuminate\\Foundation\\Http\\Kernel as HttpKernel;\n\nclass Kernel extends HttpKernel\n{\n    protected \$middleware = [];\n\n    protected \$middlewareGroups = ['web' => [], 'api' => []];\n}\n",
            'app/Console/Kernel.php' => "<?php\n\nnamespace App\\Console;\n\nuse Illuminate\\Foundation\\Console\\Kernel as ConsoleKernel;\n\nclass Kernel extends ConsoleKernel\n{\n    protected function commands()\n    {\n        require base_path('routes/console.php');\n    }\n}\n",
            'app/Exceptions/Handler.php' => "<?php\n\nnamespace App\\Exceptions;\n\nuse Illuminate\\Foundation\\Exceptions\\Handler as ExceptionHandler;\n\nclass Handler extends ExceptionHandler\n{\n}\n",
            'app/Providers/BroadcastServiceProvider.php' => "<?php\n\nnamespace App\\Providers;\n\nuse Illuminate\\Support\\Facades\\Broadcast;\nuse Illuminate\\Support\\ServiceProvider;\n\nclass BroadcastServiceProvider extends ServiceProvider\n{\n    public function boot()\n    {\n        Broadcast::routes();\n\n        require base_path('routes/channels.php');\n    }\n}\n",
            'config/app.php' => "<?php\n\nreturn [\n    'name' => env('APP_NAME', 'Laravel'),\n    'env' => env('APP_ENV', 'production'),\n    'debug' => (bool) env('APP_DEBUG', false),\n    'url' => env('APP_URL', 'http://localhost'),\n    'timezone' => 'UTC',\n    'locale' => 'en',\n    'key' => env('APP_KEY'),\n    'cipher' => 'AES-256-CBC',\n    'providers' => [\n$providers\n        // App\\Providers\\BroadcastServiceProvider::class,\n    ],\n    'aliases' => [],\n];\n",
            'config/broadcasting.php' => "<?php\n\nreturn [\n\n    'default' => env('BROADCAST_DRIVER', 'null'),\n\n    'connections' => [\n\n        'redis' => [\n            'driver' => 'redis',\n            'connection' => 'default',\n        ],\n\n        'log' => [\n            'driver' => 'log',\n        ],\n\n        'null' => [\n            'driver' => 'null',\n        ],\n\n    ],\n\n];\n",
            'config/cache.php' => "<?php\n\nreturn ['default' => 'array', 'stores' => ['array' => ['driver' => 'array']]];\n",
            'config/database.php' => "<?php\n\nreturn ['default' => 'sqlite', 'connections' => ['sqlite' => ['driver' => 'sqlite', 'database' => ':memory:', 'prefix' => '']], 'redis' => ['client' => 'phpredis', 'options' => ['prefix' => 'laravel_database_'], 'default' => ['host' => env('REDIS_HOST', '127.0.0.1'), 'port' => env('REDIS_PORT', 6379), 'database' => 0]]];\n",
            'config/queue.php' => "<?php\n\nreturn ['default' => env('QUEUE_CONNECTION', 'sync'), 'connections' => ['sync' => ['driver' => 'sync']], 'failed' => ['driver' => 'null']];\n",
            'config/view.php' => "<?php\n\nreturn ['paths' => [], 'compiled' => sys_get_temp_dir()];\n",
            'routes/channels.php' => "<?php\n\nuse Illuminate\\Support\\Facades\\Broadcast;\n\nBroadcast::channel('App.Models.User.{id}', function (\$user, \$id) {\n    return (int) \$user->id === (int) \$id;\n});\n",
        ];
    }
}
