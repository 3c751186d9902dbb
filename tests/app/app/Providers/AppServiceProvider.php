<?php

namespace App\Providers;

use Illuminate\Auth\GenericUser;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\ServiceProvider;

class AppServiceProvider extends ServiceProvider
{
    public function boot(): void
    {
        Auth::viaRequest('test-header', function ($request) {
            $id = $request->header('X-User');

            return $id ? new GenericUser(['id' => $id, 'name' => "Operator $id", 'remember_token' => null]) : null;
        });
    }
}
