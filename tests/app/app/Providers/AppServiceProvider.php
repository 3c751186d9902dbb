<?php

namespace App\Providers;

use Illuminate\Auth\GenericUser;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\ServiceProvider;

class AppServiceProvider extends ServiceProvider
{
    public function boot(): void
    {
        // X-User: 7 logs in operator "7"; X-User: int:9 one whose identifier is the integer 9.
        Auth::viaRequest('test-header', function ($request) {
            $id = $request->header('X-User');
            if (! $id) {
                return null;
            }
            $id = str_starts_with($id, 'int:') ? (int) substr($id, 4) : $id;

            return new GenericUser(['id' => $id, 'name' => "Operator $id", 'remember_token' => null]);
        });
    }
}
